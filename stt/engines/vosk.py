"""Vosk (Kaldi) engine: the reference engine of the SEPIA STT Server.

The model (and the optional speaker model) is loaded once; each session gets a
``KaldiRecognizer``.  Vosk's C calls release the GIL, so recognizers of several
sessions decode in parallel worker threads.  A finished session's recognizer is
kept warm for the next one (:class:`RecognizerPool`).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import vosk

from stt.catalog.specs import ModelSpec
from stt.engines.base import (
    ALTERNATIVES,
    PARTIAL_RESULTS,
    PHRASE_LIST,
    SPEAKER_DETECTION,
    WORDS_TS,
    Alternative,
    Engine,
    EngineConfig,
    Hypothesis,
    LoadedModel,
    RecognitionOptions,
    Recognizer,
    Word,
)
from stt.pcm import BYTES_PER_SAMPLE, DEFAULT_SAMPLE_RATE

#: Audio goes to Kaldi in pieces of exactly this many seconds, whatever the
#: client's frame sizes, so an endpoint inside a large frame is seen where it
#: happens.  (Vosk's words still vary a little from recognizer to recognizer for
#: the same audio: the tests check structure and timing, not exact words.)
FEED_SECONDS = 0.1
#: A reused recognizer is retired after this much audio: its graph cache grows with
#: every new stretch of speech it decodes (about 180 MB after 100 s of varied
#: speech with the Korean model), and Kaldi counts word times from its first audio
#: in a 32-bit float, which must stay exact to well under a millisecond.
MAX_REUSE_S = 600.0
#: How much the thread that makes recognizers ahead of time steps back for everything else.
SPARE_NICENESS = 10

#: Kaldi's own log (model loading details) only with ``log_level = debug``.
_LOG_LEVELS = {"debug": 0}


def supports_runtime_grammar(model_path: Path) -> bool:
    """Only models with a runtime graph (``HCLr.fst`` + ``Gr.fst``) can take a phrase list."""
    graph = model_path / "graph"
    return (graph / "HCLr.fst").is_file() and (graph / "Gr.fst").is_file()


class VoskRecognizer(Recognizer):
    def __init__(
        self,
        recognizer: vosk.KaldiRecognizer,
        options: RecognitionOptions,
        *,
        pool: RecognizerPool | None = None,
        samples_before: int = 0,
    ) -> None:
        self._recognizer = recognizer
        self._alternatives = options.alternatives
        self._sample_rate = options.sample_rate
        self._piece_bytes = BYTES_PER_SAMPLE * max(1, int(options.sample_rate * FEED_SECONDS))
        self._pending = b""
        #: Where this recognizer goes back to after ``finish()``; None: not reusable.
        self._pool = pool
        #: Samples the Kaldi recognizer took in all its sessions: Kaldi's word times
        #: count from its first one, this session's from its own start.
        self._samples = samples_before
        self._offset_s = samples_before / options.sample_rate
        self._finished = False

    def accept_audio(self, pcm: bytes) -> list[Hypothesis]:
        self._finished = False  # audio after the final starts a new utterance
        data = self._pending + pcm
        whole = len(data) - len(data) % self._piece_bytes
        self._pending = data[whole:]
        self._samples += whole // BYTES_PER_SAMPLE
        results: list[Hypothesis] = []
        partial_pending = False
        for start in range(0, whole, self._piece_bytes):
            if self._recognizer.AcceptWaveform(data[start : start + self._piece_bytes]):
                results.append(self._final(self._recognizer.Result()))
                partial_pending = False
            else:
                partial_pending = True
        if partial_pending:  # one partial per call: only the newest is worth sending
            partial = json.loads(self._recognizer.PartialResult())
            results.append(Hypothesis(partial.get("partial", ""), is_final=False))
        return results

    def finish(self) -> Hypothesis:
        if self._pending:
            self._recognizer.AcceptWaveform(self._pending)
            self._samples += len(self._pending) // BYTES_PER_SAMPLE
            self._pending = b""
        self._finished = True
        return self._final(self._recognizer.FinalResult())

    def close(self) -> None:
        recognizer, self._recognizer = self._recognizer, None
        if self._pool is not None and self._finished and recognizer is not None:
            self._pool.give_back(self._sample_rate, recognizer, self._samples)
        # Otherwise the Kaldi decoder is freed now, with the last reference to it.

    def _final(self, raw: str) -> Hypothesis:
        result = json.loads(raw)
        speaker_vector = tuple(result.get("spk", ()))
        if self._alternatives == 0:
            # Plain format: per-word confidences, no sentence score (SEPIA sends -1).
            return Hypothesis(
                text=result.get("text", ""),
                is_final=True,
                words=self._words(result.get("result", ())),
                alternatives=(),
                speaker_vector=speaker_vector,
            )
        best, *others = result.get("alternatives") or [{"text": "", "confidence": -1}]
        return Hypothesis(
            text=best.get("text", ""),
            is_final=True,
            confidence=float(best.get("confidence", -1)),
            words=self._words(best.get("result", ())),
            alternatives=tuple(
                Alternative(
                    o.get("text", ""),
                    float(o.get("confidence", -1)),
                    self._words(o.get("result", ())),
                )
                for o in others
            )
            or None,
            speaker_vector=speaker_vector,
        )

    def _words(self, entries: Any) -> tuple[Word, ...]:
        """Kaldi's words with times from this session's start (ms precision, as Kaldi's)."""
        offset = self._offset_s
        return tuple(
            Word(
                e["word"],
                round(float(e["start"]) - offset, 3),
                round(float(e["end"]) - offset, 3),
                e.get("conf"),
            )
            for e in entries
        )


@dataclass(slots=True)
class _Idle:
    recognizer: vosk.KaldiRecognizer
    #: Samples it took in earlier sessions (0: never used).
    samples: int
    #: When it was made or given back (``time.monotonic()``).
    since: float


class RecognizerPool:
    """One idle Kaldi recognizer per sample rate: the last finished one, kept warm.

    A runtime-graph model (``HCLr.fst`` + ``Gr.fst``) composes its decoding graph
    while it decodes, separately in each recognizer, and caches what it composed
    (about 80 MB for the Korean model).  A fresh recognizer spends most of its
    first minute of speech composing; a warm one decodes the same speech 3-7x
    cheaper.  So the recognizer of a session that reached its final is cleaned up
    (new features and decoder: nothing of that speaker carries over; the graph
    cache stays) and handed to the next session.  One per rate bounds the memory
    kept between sessions; sessions that overlap it start fresh, and then a fresh
    one is made ahead of time in a background thread for the next overlapping
    session (making one costs about 50 ms of CPU, which would otherwise delay that
    session's first decode).  A warm one that no session takes for a while is freed
    (:meth:`release_idle`): a server left alone gives its memory back.
    """

    def __init__(self, model: vosk.Model) -> None:
        self._model = model
        self._idle: dict[float, _Idle] = {}
        self._making: set[float] = set()
        self._lock = threading.Lock()

    def take(self, sample_rate: float) -> tuple[vosk.KaldiRecognizer, int]:
        """A recognizer and the samples it took before (for word times)."""
        with self._lock:
            idle = self._idle.pop(sample_rate, None)
        if idle is not None:
            return idle.recognizer, idle.samples
        # Sessions overlap: the next one may too, so one is made ahead for it.
        self.prepare(sample_rate)
        return vosk.KaldiRecognizer(self._model, sample_rate), 0

    def give_back(self, sample_rate: float, recognizer: vosk.KaldiRecognizer, samples: int) -> None:
        """Keep a finished recognizer for the next session if it is the warmest one.

        Of two, the one that decoded more audio is kept: its cache is the warmer,
        and keeping the same one, rather than whichever session ended last, lets
        the memory of all the others go back to the system as a whole.
        """
        if samples > MAX_REUSE_S * sample_rate:
            return  # retired (cache size, word time precision): the next one starts fresh
        # After FinalResult, the next (empty) input starts a new feature pipeline and
        # decoder and frees the old ones: the memory of this session goes now.
        recognizer.AcceptWaveform(b"")
        with self._lock:
            idle = self._idle.get(sample_rate)
            if idle is None or idle.samples < samples:
                self._idle[sample_rate] = _Idle(recognizer, samples, time.monotonic())
        # The one not kept is freed here, outside the lock, with its last reference.

    def release_idle(self, idle_s: float, now: float) -> int:
        """Free the warm recognizers no session took for ``idle_s`` seconds; returns how many.

        Their caches (80-180 MB with the Korean model) pay off while sessions keep
        coming, not on a server left alone.  A fresh one takes each one's place, as at
        start-up: it holds next to nothing until it decodes.
        """
        with self._lock:
            expired = [
                rate
                for rate, idle in self._idle.items()
                if idle.samples and now - idle.since >= idle_s
            ]
            freed = [self._idle.pop(rate) for rate in expired]
        freed.clear()  # the Kaldi recognizers go here, outside the lock
        for rate in expired:
            self.prepare(rate)
        return len(expired)

    def warm_count(self) -> int:
        """Recognizers kept with the caches of earlier sessions."""
        with self._lock:
            return sum(1 for idle in self._idle.values() if idle.samples)

    def prepare(self, sample_rate: float) -> None:
        """Make a fresh recognizer for this rate in the background, unless one is idle or coming."""
        with self._lock:
            if sample_rate in self._idle or sample_rate in self._making:
                return
            self._making.add(sample_rate)
        threading.Thread(target=self._make, args=(sample_rate,), daemon=True).start()

    def _make(self, sample_rate: float) -> None:
        # Made ahead of time: it must not take CPU from decoding or the event loop.
        # (On Linux, priority is per thread: this lowers only this thread.)
        with contextlib.suppress(OSError, AttributeError):
            os.setpriority(os.PRIO_PROCESS, 0, SPARE_NICENESS)
        recognizer = vosk.KaldiRecognizer(self._model, sample_rate)
        with self._lock:
            self._making.discard(sample_rate)
            # A warm one given back meanwhile is worth more: this one is dropped.
            self._idle.setdefault(sample_rate, _Idle(recognizer, 0, time.monotonic()))


class VoskModel(LoadedModel):
    def __init__(self, spec: ModelSpec, model: vosk.Model, speaker: vosk.SpkModel | None) -> None:
        super().__init__(spec)
        self._model = model
        self._speaker = speaker
        self._grammar = supports_runtime_grammar(spec.path)
        self._pool = RecognizerPool(model)
        self._pool.prepare(float(DEFAULT_SAMPLE_RATE))

    def create_recognizer(self, options: RecognitionOptions) -> Recognizer:
        effective = self.effective_options(options)
        pool: RecognizerPool | None = None
        samples_before = 0
        if effective["phrases"]:  # its own graph: not shared with other sessions
            grammar = json.dumps(effective["phrases"], ensure_ascii=False)
            recognizer = vosk.KaldiRecognizer(self._model, options.sample_rate, grammar)
        elif effective["speaker"]:  # a speaker model cannot be taken off again
            recognizer = vosk.KaldiRecognizer(self._model, options.sample_rate)
            recognizer.SetSpkModel(self._speaker)
        elif options.background:  # the warm one is worth most to a live stream
            recognizer = vosk.KaldiRecognizer(self._model, options.sample_rate)
        else:
            recognizer, samples_before = self._pool.take(options.sample_rate)
            pool = self._pool
        recognizer.SetWords(options.words)
        recognizer.SetMaxAlternatives(options.alternatives)
        return VoskRecognizer(recognizer, options, pool=pool, samples_before=samples_before)

    def release_idle(self, idle_s: float, now: float) -> int:
        return self._pool.release_idle(idle_s, now)

    def warm_count(self) -> int:
        return self._pool.warm_count()

    def effective_options(self, options: RecognitionOptions) -> dict[str, Any]:
        return {
            "alternatives": options.alternatives,
            "words": options.words,
            # x-vectors only come with the plain (alternatives=0) result format.
            "speaker": options.speaker and self._speaker is not None and options.alternatives == 0,
            "phrases": list(options.phrases) if self._grammar else [],
        }


class VoskEngine(Engine):
    name = "vosk"

    def __init__(self, config: EngineConfig) -> None:
        super().__init__(config)
        vosk.SetLogLevel(_LOG_LEVELS.get(config.log_level, -1))
        self._speaker: vosk.SpkModel | None = None

    def features(self) -> list[str]:
        features = [PARTIAL_RESULTS, ALTERNATIVES, WORDS_TS, PHRASE_LIST]
        if self.config.speaker_model is not None:
            features.append(SPEAKER_DETECTION)
        return features

    def load_model(self, spec: ModelSpec) -> LoadedModel:
        if not spec.path.is_dir():
            raise FileNotFoundError(f"Vosk model folder not found: {spec.path}")
        if self._speaker is None and self.config.speaker_model is not None:
            self._speaker = vosk.SpkModel(str(self.config.speaker_model))
        return VoskModel(spec, vosk.Model(str(spec.path)), self._speaker)
