"""The fleet tests run against ``$SEPIA_STT_IMAGE`` (``nox -s fleet`` builds it with the Korean
Vosk model and Whisper tiny.en); without it (``nox -s tests``) nothing here is collected."""

from __future__ import annotations

import os

import pytest

from tests.fleet.fleet import IMAGE_ENV

if not os.environ.get(IMAGE_ENV):
    collect_ignore_glob = ["test_*.py"]


@pytest.fixture(scope="session")
def image() -> str:
    return os.environ[IMAGE_ENV]
