"""Vosk (Kaldi) engine: the reference engine of the SEPIA STT Server.

The model (and the optional speaker model) is loaded once; each session gets a
``KaldiRecognizer``.  Vosk's C calls release the GIL, so recognizers of several
sessions decode in parallel worker threads.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from pathlib import Path
from typing import Any

import vosk

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
from stt.models import ModelSpec

#: Audio goes to Kaldi in pieces of exactly this many seconds, whatever the
#: client's frame sizes, so an endpoint inside a large frame is seen where it
#: happens.  (Vosk's words still vary a little from recognizer to recognizer for
#: the same audio: the tests check structure and timing, not exact words.)
FEED_SECONDS = 0.1
#: The rate nearly every client sends; a spare recognizer for it is made at start.
DEFAULT_SAMPLE_RATE = 16000.0
#: How much the thread that makes spare recognizers steps back for everything else.
SPARE_NICENESS = 10

#: Kaldi's own log (model loading details) only with ``log_level = debug``.
_LOG_LEVELS = {"debug": 0}


def supports_runtime_grammar(model_path: Path) -> bool:
    """Only models with a runtime graph (``HCLr.fst`` + ``Gr.fst``) can take a phrase list."""
    graph = model_path / "graph"
    return (graph / "HCLr.fst").is_file() and (graph / "Gr.fst").is_file()


class VoskRecognizer(Recognizer):
    def __init__(self, recognizer: vosk.KaldiRecognizer, options: RecognitionOptions) -> None:
        self._recognizer = recognizer
        self._alternatives = options.alternatives
        self._piece_bytes = 2 * max(1, int(options.sample_rate * FEED_SECONDS))
        self._pending = b""

    def accept_audio(self, pcm: bytes) -> list[Hypothesis]:
        data = self._pending + pcm
        whole = len(data) - len(data) % self._piece_bytes
        self._pending = data[whole:]
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
            self._pending = b""
        return self._final(self._recognizer.FinalResult())

    def close(self) -> None:
        self._recognizer = None  # type: ignore[assignment]  # frees the Kaldi decoder now

    def _final(self, raw: str) -> Hypothesis:
        result = json.loads(raw)
        speaker_vector = tuple(result.get("spk", ()))
        if self._alternatives == 0:
            # Plain format: per-word confidences, no sentence score (SEPIA sends -1).
            return Hypothesis(
                text=result.get("text", ""),
                is_final=True,
                words=_words(result.get("result", ())),
                alternatives=(),
                speaker_vector=speaker_vector,
            )
        best, *others = result.get("alternatives") or [{"text": "", "confidence": -1}]
        return Hypothesis(
            text=best.get("text", ""),
            is_final=True,
            confidence=float(best.get("confidence", -1)),
            words=_words(best.get("result", ())),
            alternatives=tuple(
                Alternative(
                    o.get("text", ""), float(o.get("confidence", -1)), _words(o.get("result", ()))
                )
                for o in others
            )
            or None,
            speaker_vector=speaker_vector,
        )


def _words(entries: Any) -> tuple[Word, ...]:
    return tuple(
        Word(e["word"], float(e["start"]), float(e["end"]), e.get("conf")) for e in entries
    )


class SpareRecognizers:
    """Fresh Kaldi recognizers made ahead of time, one per sample rate in use.

    Making one composes the decoding graph (about 50 ms of CPU with a runtime-graph
    model), which would otherwise sit between a client's welcome and its ack.  A spare
    is handed out at once and the next one is made in the background.
    """

    def __init__(self, model: vosk.Model) -> None:
        self._model = model
        self._spares: dict[float, vosk.KaldiRecognizer] = {}
        self._making: set[float] = set()
        self._lock = threading.Lock()

    def take(self, sample_rate: float) -> vosk.KaldiRecognizer:
        with self._lock:
            recognizer = self._spares.pop(sample_rate, None)
        self.prepare(sample_rate)
        return recognizer or vosk.KaldiRecognizer(self._model, sample_rate)

    def prepare(self, sample_rate: float) -> None:
        """Make a spare for this rate in a background thread, unless one is there or coming."""
        with self._lock:
            if sample_rate in self._spares or sample_rate in self._making:
                return
            self._making.add(sample_rate)
        threading.Thread(target=self._make, args=(sample_rate,), daemon=True).start()

    def _make(self, sample_rate: float) -> None:
        # Spares are for later: they must not take CPU from decoding or the event loop.
        # (On Linux, priority is per thread: this lowers only the spare-making thread.)
        with contextlib.suppress(OSError, AttributeError):
            os.setpriority(os.PRIO_PROCESS, 0, SPARE_NICENESS)
        recognizer = vosk.KaldiRecognizer(self._model, sample_rate)
        with self._lock:
            self._spares[sample_rate] = recognizer
            self._making.discard(sample_rate)


class VoskModel(LoadedModel):
    def __init__(self, spec: ModelSpec, model: vosk.Model, speaker: vosk.SpkModel | None) -> None:
        super().__init__(spec)
        self._model = model
        self._speaker = speaker
        self._grammar = supports_runtime_grammar(spec.path)
        self._spares = SpareRecognizers(model)
        self._spares.prepare(DEFAULT_SAMPLE_RATE)

    def create_recognizer(self, options: RecognitionOptions) -> Recognizer:
        effective = self.effective_options(options)
        if effective["phrases"]:
            grammar = json.dumps(effective["phrases"], ensure_ascii=False)
            recognizer = vosk.KaldiRecognizer(self._model, options.sample_rate, grammar)
        else:
            recognizer = self._spares.take(options.sample_rate)
        recognizer.SetWords(options.words)
        if options.alternatives > 0:
            recognizer.SetMaxAlternatives(options.alternatives)
        if effective["speaker"]:
            recognizer.SetSpkModel(self._speaker)
        return VoskRecognizer(recognizer, options)

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
