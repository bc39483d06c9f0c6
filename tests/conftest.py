from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.audio import silence, speak
from tests.server import RunningServer, write_settings

#: Korean sentences for the Korean Vosk model (what is said matters less than that it is speech).
KOREAN_SENTENCES = ["안녕하세요 오늘 날씨가 좋습니다", "하나 둘 셋 넷 다섯"]


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """The server with the Korean Vosk model and the byte-counting test engine."""
    running = RunningServer(write_settings(tmp_path_factory.mktemp("server")))
    yield running
    running.stop()


@pytest.fixture(scope="session")
def korean_speech() -> bytes:
    """One sentence of Korean speech with silence around it."""
    return silence(0.3) + speak(KOREAN_SENTENCES[0]) + silence(0.5)


@pytest.fixture(scope="session")
def korean_utterances() -> bytes:
    """Two sentences with a long pause between them: two utterances for the endpointer."""
    first, second = (speak(s) for s in KOREAN_SENTENCES)
    return silence(0.3) + first + silence(1.5) + second + silence(0.5)
