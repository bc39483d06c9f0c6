"""The ``test`` engine of the old server: counts bytes, needs no model.

Useful to check a deployment end to end without a model, and for protocol
tests where the words do not matter.
"""

from __future__ import annotations

from typing import Any

from stt.catalog.specs import ModelSpec
from stt.engines.base import (
    PARTIAL_RESULTS,
    Engine,
    Hypothesis,
    LoadedModel,
    RecognitionOptions,
    Recognizer,
)


class ByteCounter(Recognizer):
    def __init__(self) -> None:
        self.received = 0

    def accept_audio(self, pcm: bytes) -> list[Hypothesis]:
        self.received += len(pcm)
        return [Hypothesis(f"[processed bytes: {self.received}]", is_final=False)]

    def finish(self) -> Hypothesis:
        return Hypothesis(f"[processed bytes: {self.received}]", is_final=True, confidence=1.0)


class ByteCounterModel(LoadedModel):
    def create_recognizer(self, options: RecognitionOptions) -> Recognizer:
        return ByteCounter()

    def effective_options(self, options: RecognitionOptions) -> dict[str, Any]:
        return {"alternatives": 0, "words": False, "speaker": False, "phrases": []}


class ByteCounterEngine(Engine):
    name = "test"

    def features(self) -> list[str]:
        return [PARTIAL_RESULTS, "debug"]

    def load_model(self, spec: ModelSpec) -> LoadedModel:
        return ByteCounterModel(spec)
