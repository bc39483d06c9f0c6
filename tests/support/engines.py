"""Engines for protocol edge cases, loaded by the server as ``tests.support.engines:Name``.

They prove nothing about speech (the Vosk tests do that); they make the server
produce exact texts and failures on demand.
"""

from __future__ import annotations

import time
from typing import Any

from stt.catalog.specs import ModelSpec
from stt.engines.base import Engine, Hypothesis, LoadedModel, RecognitionOptions, Recognizer

#: Bytes after which :class:`FailingEngine` raises.
FAIL_AFTER_BYTES = 8000


class ScriptRecognizer(Recognizer):
    """Says the welcome's ``script`` words, one per 3200 bytes (100 ms), all on ``finish``."""

    def __init__(self, words: list[str]) -> None:
        self._words = words
        self._received = 0

    def accept_audio(self, pcm: bytes) -> list[Hypothesis]:
        self._received += len(pcm)
        heard = self._words[: self._received // 3200]
        return [Hypothesis(" ".join(heard), is_final=False)]

    def finish(self) -> Hypothesis:
        return Hypothesis(" ".join(self._words), is_final=True, confidence=0.9)


class FailingRecognizer(ScriptRecognizer):
    def accept_audio(self, pcm: bytes) -> list[Hypothesis]:
        if self._received + len(pcm) > FAIL_AFTER_BYTES:
            raise RuntimeError("decoder exploded")
        return super().accept_audio(pcm)


class SlowRecognizer(ScriptRecognizer):
    """Decodes exactly at realtime (16 kHz): a sleeping engine, for backpressure."""

    def accept_audio(self, pcm: bytes) -> list[Hypothesis]:
        time.sleep(len(pcm) / 32000)
        return super().accept_audio(pcm)


class ScriptModel(LoadedModel):
    recognizer = ScriptRecognizer

    def create_recognizer(self, options: RecognitionOptions) -> Recognizer:
        return self.recognizer(str(options.extra.get("script", "")).split())

    def effective_options(self, options: RecognitionOptions) -> dict[str, Any]:
        return {"alternatives": 1, "words": False, "speaker": False, "phrases": []}


class FailingModel(ScriptModel):
    recognizer = FailingRecognizer


class SlowModel(ScriptModel):
    recognizer = SlowRecognizer


class ScriptEngine(Engine):
    name = "script"

    def features(self) -> list[str]:
        return ["partial_results"]

    def load_model(self, spec: ModelSpec) -> LoadedModel:
        return ScriptModel(spec)


class FailingEngine(ScriptEngine):
    name = "failing"

    def load_model(self, spec: ModelSpec) -> LoadedModel:
        return FailingModel(spec)


class SlowEngine(ScriptEngine):
    name = "slow"

    def load_model(self, spec: ModelSpec) -> LoadedModel:
        return SlowModel(spec)
