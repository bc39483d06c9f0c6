"""Engines by name: the built-in ones, third-party ones from an entry-point group.

Engine modules are imported only when a configured model needs them, so a
missing or broken optional engine never takes the server down (the old server
died with "Illegal instruction" importing an engine nobody had asked for).

A third-party package registers an engine class in its ``pyproject.toml``::

    [project.entry-points."sepia_stt.engines"]
    myengine = "my_package.engine:MyEngine"

and a settings file may also name an engine class directly as ``module:Class``.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from stt.engines.base import Engine
from stt.errors import EngineNotFound

ENTRY_POINT_GROUP = "sepia_stt.engines"

BUILTIN_ENGINES = {
    "vosk": "stt.engines.vosk:VoskEngine",
    "whisper": "stt.engines.whisper:WhisperEngine",
    "test": "stt.engines.byte_counter:ByteCounterEngine",
}


def engine_class(name: str) -> type[Engine]:
    """The engine class for a settings name; :class:`EngineNotFound` if there is none."""
    target = BUILTIN_ENGINES.get(name)
    if target is None:
        found = entry_points(group=ENTRY_POINT_GROUP, name=name)
        target = next(iter(found)).value if found else (name if ":" in name else None)
    if target is None:
        raise EngineNotFound(f"no engine named {name!r}")
    module_name, _, class_name = target.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except ImportError as error:
        raise EngineNotFound(f"engine {name!r} cannot be imported: {error}") from error
    except AttributeError:
        raise EngineNotFound(f"engine {name!r}: {target} does not exist") from None
    if not (isinstance(cls, type) and issubclass(cls, Engine)):
        raise EngineNotFound(f"engine {name!r}: {target} is not an Engine")
    return cls


def available_engines() -> list[str]:
    """Names that :func:`engine_class` knows without a ``module:Class`` path."""
    names = list(BUILTIN_ENGINES)
    names += [ep.name for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name not in names]
    return names
