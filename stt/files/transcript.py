"""A recording's transcript: segments (an engine's utterance finals) with times and words.

:class:`TranscriptBuilder` is sans-IO: it is handed what the recognizer said and
how far into the audio it was, and knows nothing of threads, files or sockets, so
the server's endpoint and the command line build transcripts the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from stt.engines.base import Hypothesis, Word


@dataclass(frozen=True, slots=True)
class Segment:
    """One utterance: its text, its times in seconds from the start of the audio, its words."""

    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()
    #: 0..1 where the engine knows it, else None.
    confidence: float | None = None


@dataclass(frozen=True, slots=True)
class Transcript:
    segments: tuple[Segment, ...]
    duration_s: float
    #: The language the model ran in (``en-US``) and the model's name.
    language: str
    model: str

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.segments)

    @property
    def words(self) -> tuple[Word, ...]:
        return tuple(w for s in self.segments for w in s.words)


class TranscriptBuilder:
    """Turns a recognizer's finals into segments, in order, as the audio is decoded."""

    def __init__(self) -> None:
        self._segments: list[Segment] = []
        #: Where the audio decoded so far ends: a segment without word times ends here.
        self._position_s = 0.0

    @property
    def segments(self) -> tuple[Segment, ...]:
        return tuple(self._segments)

    def add(self, hypotheses: Iterable[Hypothesis], position_s: float) -> list[Segment]:
        """What the recognizer said after the audio up to ``position_s``; the new segments."""
        new = [self._segment(h, position_s) for h in hypotheses if h.is_final and h.text.strip()]
        self._position_s = position_s
        self._segments += new
        return new

    def transcript(self, duration_s: float, language: str, model: str) -> Transcript:
        """The whole transcript, once the recognizer's last final has been added."""
        return Transcript(tuple(self._segments), duration_s, language, model)

    def _segment(self, final: Hypothesis, position_s: float) -> Segment:
        text = final.text.strip()
        confidence = final.confidence if 0 <= final.confidence <= 1 else None
        previous_end = self._segments[-1].end if self._segments else 0.0
        if final.words:
            start = max(final.words[0].start, previous_end)
            end = max(final.words[-1].end, start)
        else:  # no word times: it was said since the last segment, before this position
            start, end = max(previous_end, 0.0), max(position_s, previous_end)
        return Segment(start, end, text, final.words, confidence)
