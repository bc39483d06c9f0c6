"""The settings files we ship parse and name installable models."""

from __future__ import annotations

import pytest

from stt.settings import load_settings
from tests.support.running import REPO


@pytest.mark.parametrize(
    ("file_name", "engines"),
    [("server.conf", {"whisper", "vosk"}), ("server-vosk.conf", {"vosk"})],
)
def test_shipped_settings_files_load(file_name, engines):
    settings = load_settings(REPO / "stt" / "config" / file_name)

    assert {m.engine for m in settings.models} == engines
    assert all(m.path.is_dir() for m in settings.models)
    assert settings.server.port == 20741
    assert settings.auth.common_token == "test1234"
