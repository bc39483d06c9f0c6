"""Whisper engine (faster-whisper / CTranslate2), streamed with VAD and local agreement.

Whisper decodes whole windows, so streaming is built around it (see
``whisper-streaming.md``): Silero VAD finds where utterances start and end and
nothing is decoded while nobody speaks (silence is where Whisper hallucinates);
during an utterance its audio is re-decoded every ``partial_interval_s`` of new
audio and the words two decodes agree on are committed
(:mod:`stt.engines.local_agreement`); after ``end_silence_s`` of silence one more
decode gives the final.  The re-decoded window is bounded by ``max_window_s`` so
the cost per decode never grows with the utterance.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from faster_whisper import WhisperModel
from faster_whisper.transcribe import Segment
from faster_whisper.vad import get_vad_model

from stt.catalog.specs import ModelSpec, short_code
from stt.engines.base import (
    PARTIAL_RESULTS,
    PHRASE_LIST,
    WORDS_TS,
    Engine,
    EngineConfig,
    Hypothesis,
    LoadedModel,
    RecognitionOptions,
    Recognizer,
    Word,
)
from stt.engines.local_agreement import LocalAgreement, join_words
from stt.pcm import DEFAULT_SAMPLE_RATE

#: Whisper and Silero both work on 16 kHz audio.
SAMPLE_RATE = DEFAULT_SAMPLE_RATE
#: Silero scores audio in windows of this many samples (32 ms) ...
VAD_WINDOW = 512
#: ... each preceded by this many samples of the window before it.
VAD_CONTEXT = 64
#: Silero state size (``h`` and ``c``).
VAD_STATE_SHAPE = (1, 1, 128)
#: Speech probability at which an utterance starts or silence stops counting.
VAD_SPEECH_THRESHOLD = 0.5
#: Below this a window is silence; in between it keeps the state it is in.
VAD_SILENCE_THRESHOLD = 0.35
#: Audio kept before the VAD trigger, because Silero reacts a little late.
PRE_ROLL_S = 0.3

DEFAULT_END_SILENCE_S = 0.7
DEFAULT_PARTIAL_INTERVAL_S = 0.8
DEFAULT_MAX_WINDOW_S = 15.0
#: Partials may cost at most 1/this of the audio time: when a decode took longer
#: than the interval allows, the next one waits for more audio instead of queueing.
PARTIAL_COST_FACTOR = 2.0

#: Beam search for partials too: with a model as small as tiny the fixed-size
#: 30 s encoder pass dominates, so beam 5 costs about 7 % more than greedy, while
#: greedy decodes of a short buffer often agree on a wrong word that then stays.
PARTIAL_BEAM_SIZE = 5
FINAL_BEAM_SIZE = 5
PARTIAL_TEMPERATURES = (0.0,)
#: Finals retry warmer when greedy output repeats itself or is unlikely.
FINAL_TEMPERATURES = (0.0, 0.2, 0.4)

#: Hallucination filter: a segment Whisper thinks is not speech and is unsure of ...
NO_SPEECH_PROB_MAX = 0.6
LOW_AVG_LOGPROB = -1.0
#: ... or one that compresses too well (the same words over and over) is dropped.
COMPRESSION_RATIO_MAX = 2.4

PROMPT_SEPARATOR = ", "
#: Characters of committed text carried as prompt into the rest of a split utterance.
CONTEXT_CHARS = 200
ENGLISH = "en"
#: Confidence of a final that heard nothing: unknown, as the protocol writes it.
EMPTY_CONFIDENCE = -1.0


class WhisperEngine(Engine):
    """Whisper on CPU through faster-whisper, int8."""

    name = "whisper"

    def __init__(self, config: EngineConfig) -> None:
        super().__init__(config)
        # faster-whisper logs every decode at INFO: partials alone are one a second per stream.
        if config.log_level != "debug":
            logging.getLogger("faster_whisper").setLevel(logging.WARNING)

    def features(self) -> list[str]:
        # No n-best: faster-whisper returns one hypothesis per segment.
        return [PARTIAL_RESULTS, WORDS_TS, PHRASE_LIST]

    def load_model(self, spec: ModelSpec) -> LoadedModel:
        threads = max(1, self.config.threads_per_decode)
        model = WhisperModel(
            str(spec.path),
            device="cpu",
            compute_type="int8",
            cpu_threads=threads,
            # One worker per decode that fits on the cores: sessions decode in parallel.
            num_workers=max(1, (os.cpu_count() or 1) // threads),
            local_files_only=True,
        )
        return LoadedWhisperModel(spec, model)


class LoadedWhisperModel(LoadedModel):
    """One WhisperModel shared by all sessions (CTranslate2 is safe across threads)."""

    def __init__(self, spec: ModelSpec, model: WhisperModel) -> None:
        super().__init__(spec)
        self.model = model

    def create_recognizer(self, options: RecognitionOptions) -> WhisperRecognizer:
        return WhisperRecognizer(self.model, options, language=self.language_for(options))

    def effective_options(self, options: RecognitionOptions) -> dict[str, Any]:
        return {
            "alternatives": min(options.alternatives, 1),
            "words": options.words,
            "speaker": False,
            "phrases": list(options.phrases),
        }

    def language_for(self, options: RecognitionOptions) -> str | None:
        """Whisper's language code for a session; None lets Whisper detect it."""
        if not self.model.model.is_multilingual:
            return ENGLISH
        code = short_code(options.language or self.spec.language)
        return code if code in self.model.supported_languages else None


@dataclass(frozen=True, slots=True)
class Decoded:
    """What one decode of the utterance buffer heard."""

    words: tuple[Word, ...]
    #: 0..1, from the token log-probabilities; None when nothing was heard.
    confidence: float | None


class WhisperRecognizer(Recognizer):
    """One session: VAD endpointing, re-decoding with local agreement, finals by beam search."""

    def __init__(
        self,
        model: WhisperModel,
        options: RecognitionOptions,
        *,
        language: str | None,
        end_silence_s: float = DEFAULT_END_SILENCE_S,
        partial_interval_s: float = DEFAULT_PARTIAL_INTERVAL_S,
        max_window_s: float = DEFAULT_MAX_WINDOW_S,
    ) -> None:
        self._model = model
        self._language = language
        # A prompt (OpenAI's ``prompt`` field) leads, as in Whisper's own API; phrases follow.
        prompt = str(options.extra.get("prompt") or "").strip()
        self._phrases = PROMPT_SEPARATOR.join(filter(None, (prompt, *options.phrases)))
        self._return_words = options.words
        self._end_silence = round(end_silence_s * SAMPLE_RATE)
        self._partial_interval_s = partial_interval_s
        self._max_window = round(max_window_s * SAMPLE_RATE)
        self._resample = (
            LinearResampler(options.sample_rate) if options.sample_rate != SAMPLE_RATE else None
        )
        self._vad = StreamingVad()
        self._pre_roll = np.zeros(0, dtype=np.float32)
        self._utterance: Utterance | None = None
        #: Samples of the stream (at 16 kHz) that went through the VAD so far.
        self._stream_samples = 0
        self._last_partial_cost_s = 0.0

    @property
    def committed_text(self) -> str:
        """The part of the latest partial that will not change any more."""
        if self._utterance is None:
            return ""
        return join_words(self._utterance.agreement.committed)

    def accept_audio(self, pcm: bytes) -> list[Hypothesis]:
        samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
        if self._resample is not None:
            samples = self._resample(samples)
        hypotheses = [
            final
            for window, speech_prob in self._vad.score(samples)
            if (final := self._on_window(window, speech_prob)) is not None
        ]
        # At most one partial per call: when audio comes faster than it can be
        # decoded, intermediate partials are skipped rather than queued.
        partial = self._partial_if_due()
        if partial is not None:
            hypotheses.append(partial)
        return hypotheses

    def finish(self) -> Hypothesis:
        utterance = self._utterance
        if utterance is None:
            return Hypothesis("", is_final=True, confidence=EMPTY_CONFIDENCE)
        utterance.append(self._vad.take_pending())
        self._utterance = None
        return self._final(utterance)

    def close(self) -> None:
        self._utterance = None
        self._pre_roll = np.zeros(0, dtype=np.float32)

    def _on_window(self, window: np.ndarray, speech_prob: float) -> Hypothesis | None:
        """Advance the endpointer by one VAD window; the final if an utterance ended."""
        self._stream_samples += len(window)
        utterance = self._utterance
        if utterance is None:
            if speech_prob >= VAD_SPEECH_THRESHOLD:
                start = self._stream_samples - len(window) - len(self._pre_roll)
                self._utterance = Utterance(start, self._pre_roll)
                self._utterance.append(window)
                self._pre_roll = np.zeros(0, dtype=np.float32)
            else:
                self._keep_pre_roll(window)
            return None
        utterance.append(window)
        utterance.track_silence(speech_prob)
        if utterance.silence >= self._end_silence:
            self._utterance = None
            return worth_sending(self._final(utterance), utterance)
        if utterance.length >= self._max_window:
            return worth_sending(self._split(utterance), utterance)
        return None

    def _keep_pre_roll(self, window: np.ndarray) -> None:
        keep = round(PRE_ROLL_S * SAMPLE_RATE)
        self._pre_roll = np.concatenate((self._pre_roll, window))[-keep:]

    def _partial_if_due(self) -> Hypothesis | None:
        utterance = self._utterance
        if utterance is None:
            return None
        interval_s = max(self._partial_interval_s, PARTIAL_COST_FACTOR * self._last_partial_cost_s)
        if utterance.length - utterance.decoded_length < interval_s * SAMPLE_RATE:
            return None
        started = time.monotonic()
        decoded = self._decode(
            utterance, beam_size=PARTIAL_BEAM_SIZE, temperatures=PARTIAL_TEMPERATURES
        )
        self._last_partial_cost_s = time.monotonic() - started
        utterance.decoded_length = utterance.length
        utterance.agreement.update(decoded.words)
        utterance.confidence = decoded.confidence
        return Hypothesis(join_words(utterance.agreement.words), is_final=False)

    def _final(self, utterance: Utterance) -> Hypothesis:
        """Decode the whole utterance once more with beam search: that is the final.

        Committed words only promise that partials do not flicker; the final decode
        hears the whole utterance, so it may still correct a word two early decodes
        agreed on (it did, measurably: keeping them cost accuracy).
        """
        decoded = self._decode(
            utterance, beam_size=FINAL_BEAM_SIZE, temperatures=FINAL_TEMPERATURES
        )
        words = decoded.words or utterance.agreement.words
        return self._final_of(words, decoded.confidence)

    def _split(self, utterance: Utterance) -> Hypothesis:
        """The window is full: finalise the committed words and go on after them.

        The rest of the utterance gets the finalised text as prompt, so it is decoded
        as the continuation of a sentence rather than as a new one.
        """
        agreement = utterance.agreement
        if agreement.committed:
            cut = round(split_time(agreement) * SAMPLE_RATE)
            final = self._final_of(agreement.committed, utterance.confidence)
            rest = utterance.audio_from(cut)
        else:
            cut = self._stream_samples
            final = self._final(utterance)
            rest = np.zeros(0, dtype=np.float32)
        self._utterance = Utterance(cut, rest, context=final.text[-CONTEXT_CHARS:])
        return final

    def _final_of(self, words: Sequence[Word], confidence: float | None) -> Hypothesis:
        return Hypothesis(
            join_words(words),
            is_final=True,
            confidence=EMPTY_CONFIDENCE if confidence is None or not words else confidence,
            words=tuple(words) if self._return_words else (),
            # One hypothesis only (no n-best): the key is left out, as Vosk does then.
        )

    def _decode(
        self, utterance: Utterance, *, beam_size: int, temperatures: tuple[float, ...]
    ) -> Decoded:
        audio = utterance.audio()
        segments, _info = self._model.transcribe(
            audio,
            language=self._language,
            beam_size=beam_size,
            temperature=list(temperatures),
            word_timestamps=True,
            condition_on_previous_text=False,
            initial_prompt=" ".join(filter(None, (self._phrases, utterance.context))) or None,
            vad_filter=False,
        )
        kept = [s for s in segments if not is_hallucination(s)]
        offset_s = utterance.start / SAMPLE_RATE
        duration_s = len(audio) / SAMPLE_RATE
        return Decoded(words_of(kept, offset_s, duration_s), confidence_of(kept))


class Utterance:
    """Audio and agreement state of the utterance being heard."""

    def __init__(self, start: int, pre_roll: np.ndarray, *, context: str = "") -> None:
        #: Stream sample (16 kHz) where the buffered audio begins.
        self.start = start
        #: Text said just before, when this continues a split utterance.
        self.context = context
        self._chunks: list[np.ndarray] = [pre_roll] if len(pre_roll) else []
        self.length = len(pre_roll)
        #: Length of the buffer when it was last decoded for a partial.
        self.decoded_length = 0
        #: Samples of silence since the last speech.
        self.silence = 0
        self.agreement = LocalAgreement()
        #: Confidence of the latest partial decode.
        self.confidence: float | None = None

    def append(self, samples: np.ndarray) -> None:
        if len(samples):
            self._chunks.append(samples)
            self.length += len(samples)

    def audio(self) -> np.ndarray:
        if len(self._chunks) > 1:
            self._chunks = [np.concatenate(self._chunks)]
        return self._chunks[0] if self._chunks else np.zeros(0, dtype=np.float32)

    def audio_from(self, stream_sample: int) -> np.ndarray:
        """The buffered audio from a stream position on."""
        return self.audio()[max(0, stream_sample - self.start) :]

    def track_silence(self, speech_prob: float) -> None:
        """Count silence with hysteresis, as Silero's own segmentation does."""
        if speech_prob >= VAD_SPEECH_THRESHOLD:
            self.silence = 0
        elif speech_prob < VAD_SILENCE_THRESHOLD or self.silence:
            self.silence += VAD_WINDOW


def worth_sending(final: Hypothesis, utterance: Utterance) -> Hypothesis | None:
    """An empty final only ends partials already shown; else VAD fired on a non-word."""
    return final if final.text or utterance.agreement.words else None


def split_time(agreement: LocalAgreement) -> float:
    """Where to cut after the committed words: midway to the next word, if one was heard."""
    end = agreement.committed[-1].end
    if not agreement.tail:
        return end
    return (end + max(end, agreement.tail[0].start)) / 2


def is_hallucination(segment: Segment) -> bool:
    """Segments Whisper invents on non-speech: unlikely no-speech, or repetitive text."""
    no_speech = (
        segment.no_speech_prob > NO_SPEECH_PROB_MAX and segment.avg_logprob < LOW_AVG_LOGPROB
    )
    return no_speech or segment.compression_ratio > COMPRESSION_RATIO_MAX


def words_of(segments: Iterable[Segment], offset_s: float, duration_s: float) -> tuple[Word, ...]:
    """Words with stream times, clamped to the decoded audio (alignment can overshoot).

    Whisper starts each word with a space; a piece without one (``-hearted`` after
    `` cold``) belongs to the word before, so it is joined to it.
    """
    words: list[Word] = []
    for segment in segments:
        for w in segment.words or ():
            text = w.word.strip()
            if not text:
                continue
            start = offset_s + min(max(float(w.start), 0.0), duration_s)
            end = max(offset_s + min(float(w.end), duration_s), start)
            word = Word(text, start, end, float(w.probability))
            if words and not w.word[:1].isspace():
                word = joined(words.pop(), word)
            words.append(word)
    return tuple(words)


def joined(first: Word, second: Word) -> Word:
    """One word of two pieces; as confident as its weaker piece."""
    confidences = [c for c in (first.confidence, second.confidence) if c is not None]
    return Word(first.word + second.word, first.start, second.end, min(confidences, default=None))


def confidence_of(segments: Sequence[Segment]) -> float | None:
    """exp of the token-weighted mean log-probability: the mean per-token probability."""
    tokens = sum(len(s.tokens) for s in segments)
    if not tokens:
        return None
    mean_logprob = sum(s.avg_logprob * len(s.tokens) for s in segments) / tokens
    return min(1.0, math.exp(mean_logprob))


class StreamingVad:
    """Silero VAD fed chunk by chunk.

    faster-whisper scores a whole recording at once; this carries the LSTM state and
    the 64-sample context from call to call so a stream is scored as if it were whole.
    The ONNX session is faster-whisper's shared one (ONNX Runtime runs are thread-safe).
    """

    def __init__(self) -> None:
        self._session = get_vad_model().session
        self._h = np.zeros(VAD_STATE_SHAPE, dtype=np.float32)
        self._c = np.zeros(VAD_STATE_SHAPE, dtype=np.float32)
        self._context = np.zeros(VAD_CONTEXT, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)

    def score(self, samples: np.ndarray) -> list[tuple[np.ndarray, float]]:
        """Each complete window of the audio so far, with its speech probability."""
        audio = np.concatenate((self._pending, samples)) if len(self._pending) else samples
        count = len(audio) // VAD_WINDOW
        self._pending = audio[count * VAD_WINDOW :]
        if count == 0:
            return []
        windows = audio[: count * VAD_WINDOW].reshape(count, VAD_WINDOW)
        contexts = np.vstack((self._context, windows[:-1, -VAD_CONTEXT:]))
        probs, self._h, self._c = self._session.run(
            None,
            {"input": np.hstack((contexts, windows)), "h": self._h, "c": self._c},
        )
        self._context = windows[-1, -VAD_CONTEXT:].copy()
        return list(zip(windows, np.asarray(probs, dtype=float).reshape(-1), strict=True))

    def take_pending(self) -> np.ndarray:
        """The samples short of a full window (at end of audio)."""
        pending, self._pending = self._pending, np.zeros(0, dtype=np.float32)
        return pending


class LinearResampler:
    """Linear interpolation to 16 kHz that stays continuous across chunks.

    No anti-alias filter: good enough for speech, whose energy is below 8 kHz.
    """

    def __init__(self, rate: float) -> None:
        #: Input samples per output sample.
        self._step = rate / SAMPLE_RATE
        #: Position of the next output sample, in input samples from ``_last``.
        self._position = 0.0
        self._last = np.zeros(0, dtype=np.float32)

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        source = np.concatenate((self._last, samples))
        if len(source) == 0:
            return source
        span = len(source) - 1
        times = np.arange(self._position, span + 1e-9, self._step)
        self._position = (times[-1] + self._step - span) if len(times) else self._position - span
        self._last = source[-1:]
        return np.interp(times, np.arange(len(source)), source).astype(np.float32)
