"""The one interface every speech engine implements.

An :class:`Engine` loads a :class:`LoadedModel` once; the model is shared by all
sessions and hands out one :class:`Recognizer` per session.  Recognizers are
plain blocking objects: the server calls them from worker threads, one call at a
time per recognizer, so an engine never needs to know about Trio.

Options are the same for all engines (:class:`RecognitionOptions`); an engine
that cannot honour one turns it off and says so in :meth:`LoadedModel.effective_options`,
which the welcome ack echoes back.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from stt.catalog.specs import ModelSpec
from stt.pcm import DEFAULT_SAMPLE_RATE

#: Feature ids as ``/settings`` lists them (SEPIA names, plus our own).
PARTIAL_RESULTS = "partial_results"
ALTERNATIVES = "alternatives"
WORDS_TS = "words_ts"
PHRASE_LIST = "phrase_list"
SPEAKER_DETECTION = "speaker_detection"


@dataclass(frozen=True, slots=True)
class Word:
    """One recognized word with times in seconds from the start of the stream."""

    word: str
    start: float
    end: float
    #: 0..1 where the engine knows it, else None.
    confidence: float | None = None


@dataclass(frozen=True, slots=True)
class Alternative:
    """A further hypothesis of the n-best list."""

    text: str
    confidence: float
    words: tuple[Word, ...] = ()


@dataclass(frozen=True, slots=True)
class Hypothesis:
    """What a recognizer heard: a partial so far, or the final of an utterance."""

    text: str
    is_final: bool
    #: Engine score of the best hypothesis; -1 means unknown (always on partials).
    confidence: float = -1.0
    words: tuple[Word, ...] = ()
    #: Further hypotheses; None when the engine reports none at all (the key is left
    #: out of the message), an empty tuple when it reports "no alternatives".
    alternatives: tuple[Alternative, ...] | None = None
    speaker_vector: tuple[float, ...] = ()


#: Largest n-best list a session may ask for.
MAX_ALTERNATIVES = 10


@dataclass(frozen=True, slots=True)
class RecognitionOptions:
    """Per-session recognition options, the same for every engine."""

    sample_rate: float = float(DEFAULT_SAMPLE_RATE)
    #: n-best size; 0 and 1 both mean one hypothesis (0 gives per-word confidences on Vosk).
    alternatives: int = 1
    words: bool = False
    phrases: tuple[str, ...] = ()
    speaker: bool = False
    #: The language the client asked for, normalised (``en-US``), if any.
    language: str | None = None
    #: Engine-specific welcome keys, untouched (e.g. Coqui's ``hotWords``).
    extra: Mapping[str, Any] = field(default_factory=dict)
    #: Background work (a file) leaves what an engine keeps warm to live sessions.
    background: bool = False


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """Server-wide settings an engine may need when it loads models."""

    speaker_model: Path | None = None
    log_level: str = "warning"
    #: Threads one decode may use; the server bounds concurrent decodes separately.
    threads_per_decode: int = 1


class Recognizer(ABC):
    """One session's decoder.  Not thread-safe: one call at a time."""

    @abstractmethod
    def accept_audio(self, pcm: bytes) -> list[Hypothesis]:
        """Feed s16le mono PCM (even length); return new partials and utterance finals, in order.

        A partial may repeat the previous one: the session drops unchanged partials.
        """

    @abstractmethod
    def finish(self) -> Hypothesis:
        """End of audio: the final for whatever is not yet finalised (text may be empty)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Free native resources early; called once, after the last use."""


class LoadedModel(ABC):
    """A model in memory, shared by every session that uses it."""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec

    @abstractmethod
    def create_recognizer(self, options: RecognitionOptions) -> Recognizer:
        """A fresh recognizer for one session (called in a worker thread)."""

    @abstractmethod
    def effective_options(self, options: RecognitionOptions) -> dict[str, Any]:
        """The engine options as they will really apply, for the welcome ack."""

    def release_idle(self, idle_s: float, now: float) -> int:
        """Free what was kept warm for later sessions and unused for ``idle_s`` seconds.

        ``now`` is ``time.monotonic()``; returns how many recognizers were freed.
        Engines that keep nothing between sessions have nothing to free.
        """
        return 0

    def warm_count(self) -> int:
        """Recognizers kept warm for later sessions (``/metrics``)."""
        return 0


class Engine(ABC):
    """A speech engine: a factory of loaded models."""

    #: Name used in settings (``asr_engine``, ``engineN``).
    name: ClassVar[str]

    def __init__(self, config: EngineConfig) -> None:
        self.config = config

    @abstractmethod
    def features(self) -> list[str]:
        """Feature ids for ``/settings``, in a stable order."""

    @abstractmethod
    def load_model(self, spec: ModelSpec) -> LoadedModel:
        """Load a model from disk (slow; called once per model, in a worker thread)."""
