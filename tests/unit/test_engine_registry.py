"""Engines by name: built-in, from the entry-point group, or as ``module:Class``."""

from __future__ import annotations

import sys

import pytest

from stt.engines import ENTRY_POINT_GROUP, available_engines, engine_class
from stt.engines.byte_counter import ByteCounterEngine
from stt.errors import EngineNotFound
from tests.support.engines import ScriptEngine


def test_builtin_engines_are_found_by_name():
    assert engine_class("test") is ByteCounterEngine
    assert {"vosk", "whisper", "test"} <= set(available_engines())


def test_a_module_class_path_names_an_engine():
    assert engine_class("tests.support.engines:ScriptEngine") is ScriptEngine


def test_an_installed_package_registers_an_engine(tmp_path, monkeypatch):
    dist_info = tmp_path / "sepia_stt_extra-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: sepia-stt-extra\nVersion: 1.0\n"
    )
    (dist_info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\nscripted = tests.support.engines:ScriptEngine\n"
    )
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])

    assert engine_class("scripted") is ScriptEngine
    assert "scripted" in available_engines()


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("no-such-engine", "no engine named"),
        ("tests.nowhere:Engine", "cannot be imported"),
        ("tests.support.engines:Missing", "does not exist"),
        ("tests.support.engines:FAIL_AFTER_BYTES", "is not an Engine"),
    ],
)
def test_unknown_engines_are_a_clear_error(name, reason):
    with pytest.raises(EngineNotFound, match=reason):
        engine_class(name)
