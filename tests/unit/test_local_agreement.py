"""The local agreement policy: what gets committed, and that it never changes."""

from __future__ import annotations

from stt.engines.base import Word
from stt.engines.local_agreement import (
    LocalAgreement,
    agreed_prefix_length,
    join_words,
    normalize_word,
)


def words(text: str, start: float = 0.0, step: float = 0.5) -> list[Word]:
    """Words of *text* spaced *step* seconds apart from *start*."""
    return [
        Word(token, start + i * step, start + (i + 1) * step)
        for i, token in enumerate(text.split())
    ]


def texts(run: tuple[Word, ...]) -> str:
    return join_words(run)


def test_normalize_word_ignores_case_and_punctuation() -> None:
    assert normalize_word("Meters.") == "meters"
    assert normalize_word("don't") == "dont"
    assert normalize_word("Über,") == "über"
    assert normalize_word("...") == ""


def test_agreed_prefix_length() -> None:
    assert agreed_prefix_length(words("go forward ten"), words("Go forward, two")) == 2
    assert agreed_prefix_length(words("go"), words("go forward")) == 1
    assert agreed_prefix_length([], words("go")) == 0


def test_first_decode_commits_nothing() -> None:
    agreement = LocalAgreement()
    assert agreement.update(words("go for")) == ()
    assert agreement.committed == ()
    assert texts(agreement.tail) == "go for"
    assert texts(agreement.words) == "go for"


def test_two_agreeing_decodes_commit_their_common_prefix() -> None:
    agreement = LocalAgreement()
    agreement.update(words("go for"))
    newly = agreement.update(words("Go forward ten"))
    assert texts(newly) == "Go"
    assert texts(agreement.committed) == "Go"
    assert texts(agreement.tail) == "forward ten"


def test_commits_grow_and_use_the_latest_timings() -> None:
    agreement = LocalAgreement()
    agreement.update(words("go forward"))
    agreement.update(words("go forward ten", step=0.6))
    assert texts(agreement.committed) == "go forward"
    assert agreement.committed[1].end == 1.2
    agreement.update(words("go forward ten meters", step=0.6))
    assert texts(agreement.committed) == "go forward ten"
    assert texts(agreement.tail) == "meters"


def test_committed_words_are_never_rewritten() -> None:
    agreement = LocalAgreement()
    agreement.update(words("go forward ten"))
    agreement.update(words("go forward ten meters"))
    assert texts(agreement.committed) == "go forward ten"
    # A later decode rewords the committed audio; the committed words stay.
    agreement.update(words("so for word ten meters now"))
    assert texts(agreement.committed) == "go forward ten meters"
    assert texts(agreement.tail) == "now"


def test_rewording_drops_committed_words_repeated_at_the_seam() -> None:
    agreement = LocalAgreement()
    agreement.update(words("one two three"))
    agreement.update(words("one two three"))
    assert texts(agreement.committed) == "one two three"
    # Reworded start, then "three" again timed just inside the committed audio.
    hypothesis = [
        *words("won too", step=0.6),
        Word("three", 1.45, 1.9),
        Word("four", 1.9, 2.4),
    ]
    agreement.update(hypothesis)
    assert texts(agreement.words) == "one two three four"


def test_disagreement_commits_nothing_more() -> None:
    agreement = LocalAgreement()
    agreement.update(words("the cat"))
    assert agreement.update(words("a cat sat")) == ()
    assert texts(agreement.words) == "a cat sat"
