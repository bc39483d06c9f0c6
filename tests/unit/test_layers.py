"""The package's layers, read from its imports (every import, also those inside functions):
no import circle, and no layer reaching up into one above it (ARCHITECTURE.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import stt

PACKAGE_DIR = Path(stt.__file__).resolve().parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports, absolute names (``from stt import x`` counts as ``stt.x``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


MODULES = {module_name(p): p for p in PACKAGE_DIR.rglob("*.py")}
GRAPH = {
    name: {target for target in imports_of(path) if target in MODULES and target != name}
    for name, path in MODULES.items()
}


def cycle_through(start: str) -> list[str] | None:
    """An import path from ``start`` back to itself, if there is one."""
    stack = [(start, [start])]
    seen: set[str] = set()
    while stack:
        node, path = stack.pop()
        for target in GRAPH[node]:
            if target == start:
                return [*path, start]
            if target not in seen:
                seen.add(target)
                stack.append((target, [*path, target]))
    return None


def test_the_graph_is_read_from_the_sources():
    assert "stt.server.connection" in MODULES
    assert "stt.actions" in GRAPH["stt.server.connection"]


def test_no_module_imports_itself_in_a_circle():
    cycles = [cycle for name in sorted(GRAPH) if (cycle := cycle_through(name))]
    assert not cycles, " -> ".join(cycles[0])


#: Layer -> packages it must not import.  ``stt.sepia`` is sans-IO: no Trio, no server.
FORBIDDEN = {
    "stt.sepia": ("trio", "quart", "hypercorn", "stt.server", "stt.catalog.registry"),
    "stt.vosk_server": ("trio", "quart", "hypercorn", "stt.server", "stt.sepia", "stt.catalog"),
    "stt.wyoming": ("trio", "quart", "hypercorn", "stt.server", "stt.sepia", "stt.catalog"),
    "stt.engines": ("trio", "stt.server", "stt.sepia", "stt.settings"),
    "stt.catalog.specs": ("stt.settings", "stt.server", "stt.sepia", "stt.engines"),
    "stt.catalog.folders": ("stt.settings", "stt.server", "stt.sepia", "stt.engines"),
    "stt.settings": ("stt.catalog.registry", "stt.server", "stt.sepia", "stt.engines"),
    # One connection carries every protocol's rules: it knows none of them.
    "stt.server.connection": ("stt.sepia", "stt.vosk_server", "stt.wyoming"),
    "stt.actions": ("trio", "stt.server", "stt.sepia", "stt.settings", "stt.catalog"),
    # Files and OpenAI's rules are sans-IO too: the server's ASGI layer moves the bytes.
    "stt.files": ("trio", "quart", "hypercorn", "stt.server", "stt.sepia", "stt.settings"),
    "stt.openai": ("trio", "quart", "hypercorn", "stt.server", "stt.sepia", "stt.settings"),
    "stt.limits": ("trio", "stt.server", "stt.sepia", "stt.settings", "stt.catalog"),
    "stt.errors": ("stt.",),
    "stt.pcm": ("stt.",),
}


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_a_layer_does_not_reach_up(layer):
    offending = sorted(
        f"{name} imports {target}"
        for name, path in MODULES.items()
        if name == layer or name.startswith(layer + ".")
        for target in imports_of(path)
        if any(
            target == f or target.startswith(f if f.endswith(".") else f + ".")
            for f in FORBIDDEN[layer]
        )
    )
    assert not offending
