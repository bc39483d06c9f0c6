"""The "local agreement" policy for streaming with a whole-window decoder.

Whisper cannot decode incrementally, so a streaming recognizer re-decodes the
growing utterance buffer and must decide which words are stable enough to show
as settled.  Local agreement (ufal/whisper_streaming) commits the longest word
prefix that two consecutive decodes agree on and never takes a committed word
back; the rest of the latest decode is the unstable tail of the partial.

Plain code on :class:`~stt.engines.base.Word` values: no model, no audio.
"""

from __future__ import annotations

from collections.abc import Sequence

from stt.engines.base import Word

#: How far (s) a fresh word may start before the end of the last committed word and
#: still count as new audio; word timestamps of two decodes jitter by about this much.
TIMING_TOLERANCE_S = 0.1
#: Longest run of committed words a re-decode may repeat at its start (dropped).
MAX_REPEATED_WORDS = 5


def normalize_word(word: str) -> str:
    """The form two decodes are compared in: case and punctuation do not count."""
    return "".join(ch for ch in word.casefold() if ch.isalnum())


def same_words(left: Sequence[Word], right: Sequence[Word]) -> bool:
    """Whether two word runs say the same thing, ignoring case, punctuation and times."""
    return len(left) == len(right) and all(
        normalize_word(a.word) == normalize_word(b.word) for a, b in zip(left, right, strict=True)
    )


def agreed_prefix_length(left: Sequence[Word], right: Sequence[Word]) -> int:
    """Number of leading words two hypotheses agree on."""
    count = 0
    for a, b in zip(left, right, strict=False):
        if normalize_word(a.word) != normalize_word(b.word):
            break
        count += 1
    return count


def join_words(words: Sequence[Word]) -> str:
    """Text of a word run as a partial or final shows it."""
    return " ".join(w.word for w in words)


class LocalAgreement:
    """Committed words and unstable tail of one utterance, updated decode by decode."""

    def __init__(self) -> None:
        self._committed: list[Word] = []
        self._tail: list[Word] = []

    @property
    def committed(self) -> tuple[Word, ...]:
        """Words two decodes agreed on; they never change again."""
        return tuple(self._committed)

    @property
    def tail(self) -> tuple[Word, ...]:
        """Words of the latest decode past the committed ones; may still change."""
        return tuple(self._tail)

    @property
    def words(self) -> tuple[Word, ...]:
        """What a partial shows: committed words, then the tail."""
        return (*self._committed, *self._tail)

    def update(self, hypothesis: Sequence[Word]) -> tuple[Word, ...]:
        """Take the next decode of the whole buffer; return the words it newly commits."""
        fresh = self._past_committed(hypothesis)
        agreed = agreed_prefix_length(self._tail, fresh)
        newly_committed = fresh[:agreed]
        self._committed.extend(newly_committed)
        self._tail = fresh[agreed:]
        return tuple(newly_committed)

    def _past_committed(self, hypothesis: Sequence[Word]) -> list[Word]:
        """The words of *hypothesis* that come after the committed ones."""
        count = len(self._committed)
        if same_words(hypothesis[:count], self._committed):
            return list(hypothesis[count:])
        # The decode reworded committed audio: keep only what it heard after it, minus
        # any committed words it repeats at the seam.
        committed_end = self._committed[-1].end
        later = [w for w in hypothesis if w.start >= committed_end - TIMING_TOLERANCE_S]
        return later[self._repeated_at_seam(later) :]

    def _repeated_at_seam(self, later: Sequence[Word]) -> int:
        """How many leading words of *later* repeat the last committed words."""
        longest = min(MAX_REPEATED_WORDS, len(later), len(self._committed))
        for size in range(longest, 0, -1):
            if same_words(self._committed[-size:], later[:size]):
                return size
        return 0
