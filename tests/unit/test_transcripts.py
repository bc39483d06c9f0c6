"""TranscriptAssembler: which partials and finals a client sees, and how finals are joined."""

from __future__ import annotations

import pytest

from stt.engines.base import Alternative, Hypothesis, Word
from stt.sepia.transcripts import TranscriptAssembler


def partial(text_, **kwargs) -> Hypothesis:
    return Hypothesis(text_, is_final=False, **kwargs)


def final(text_, confidence=-1.0, **kwargs) -> Hypothesis:
    return Hypothesis(text_, is_final=True, confidence=confidence, **kwargs)


# -- TranscriptAssembler -----------------------------------------------------------------------


def texts(hypotheses) -> list[tuple[str, bool]]:
    return [(h.text, h.is_final) for h in hypotheses]


def test_unchanged_partials_are_dropped():
    assembler = TranscriptAssembler(continuous=False)
    sent = assembler.add([partial(""), partial(""), partial("a"), partial("a"), partial("ab")])
    assert texts(sent) == [("", False), ("a", False), ("ab", False)]
    assert texts(assembler.add([partial("ab")])) == []


def test_interim_results_false_drops_every_partial_but_not_finals():
    assembler = TranscriptAssembler(continuous=True, interim_results=False)
    sent = assembler.add([partial("a"), partial("ab"), final("ab c"), partial("d")])
    assert texts(sent) == [("ab c", True)]


@pytest.mark.parametrize("continuous", [True, False])
def test_an_empty_partial_after_a_final_is_sent_again(continuous):
    assembler = TranscriptAssembler(continuous=continuous)
    assert texts(assembler.add([partial("")])) == [("", False)]
    # An utterance end (even an empty one) restarts the partials: the same "" goes out again.
    assert texts(assembler.add([final(""), partial("")])) == [("", False)]
    assert texts(assembler.add([partial("")])) == []


def test_partials_and_finals_interleave_in_continuous_mode():
    assembler = TranscriptAssembler(continuous=True)
    sent = assembler.add([partial(""), partial("hi"), final("hi"), partial(""), partial("hi")])
    assert texts(sent) == [("", False), ("hi", False), ("hi", True), ("", False), ("hi", False)]


def test_non_continuous_partials_also_restart_after_an_utterance_end():
    assembler = TranscriptAssembler(continuous=False)
    sent = assembler.add([partial(""), partial("one"), final("one"), partial("")])
    assert texts(sent) == [("", False), ("one", False), ("", False)]


def test_continuous_sends_a_final_per_utterance_and_skips_empty_ones():
    assembler = TranscriptAssembler(continuous=True)
    sent = assembler.add([final("first", 0.9), final(""), final("second", 0.8)])
    assert texts(sent) == [("first", True), ("second", True)]
    assert [h.confidence for h in sent] == [0.9, 0.8]


def test_continuous_finish_is_exactly_the_open_rest_even_if_empty():
    assembler = TranscriptAssembler(continuous=True)
    assembler.add([final("first")])
    assert texts([assembler.finish(final(""))]) == [("", True)]


def test_continuous_finish_does_not_repeat_earlier_utterances():
    assembler = TranscriptAssembler(continuous=True)
    assembler.add([final("first")])
    assert assembler.finish(final("second")).text == "second"


def test_non_continuous_holds_finals_back_and_joins_them_at_the_end():
    w1, w2, w3 = Word("set", 0, 1), Word("a", 1, 2), Word("timer", 2, 3)
    assembler = TranscriptAssembler(continuous=False)
    sent = assembler.add(
        [
            final("set", 0.9, words=(w1,), speaker_vector=(1.0, 2.0)),
            final(""),
            final("a", 0.4, words=(w2,), speaker_vector=(3.0, 4.0)),
        ]
    )
    assert sent == []
    joined = assembler.finish(final("timer", 0.7, words=(w3,)))
    assert joined.text == "set a timer"
    assert joined.is_final is True
    assert joined.confidence == 0.4
    assert joined.words == (w1, w2, w3)
    # The last utterance has no speaker vector: the latest non-empty one is kept.
    assert joined.speaker_vector == (3.0, 4.0)


def test_non_continuous_finish_with_an_empty_rest_joins_only_the_utterances():
    assembler = TranscriptAssembler(continuous=False)
    assembler.add([final("hello", 0.9), final("world", 0.95)])
    joined = assembler.finish(final("", 0.1))
    assert (joined.text, joined.confidence) == ("hello world", 0.9)


def test_non_continuous_finish_without_anything_heard_is_one_empty_final():
    assembler = TranscriptAssembler(continuous=False)
    assembler.add([partial("uh"), final("")])
    assert texts([assembler.finish(final(""))]) == [("", True)]


@pytest.mark.parametrize(
    ("alternatives", "expected"),
    [(None, None), ((), ()), ((Alternative("x", 0.1),), ())],
)
def test_joined_utterances_drop_alternatives_but_keep_the_key_shape(alternatives, expected):
    assembler = TranscriptAssembler(continuous=False)
    assembler.add([final("one", alternatives=(Alternative("won", 0.2),))])
    joined = assembler.finish(final("two", alternatives=alternatives))
    assert joined.alternatives == expected


def test_a_single_utterance_keeps_its_alternatives():
    alternatives = (Alternative("won", 0.2),)
    assembler = TranscriptAssembler(continuous=False)
    assembler.add([final("one", 0.5, alternatives=alternatives)])
    assert assembler.finish(final("")).alternatives == alternatives


@pytest.mark.parametrize("continuous", [True, False])
def test_optimize_final_result_rewrites_finals_only(continuous):
    assembler = TranscriptAssembler(continuous=continuous, optimize_final=True, language="en-US")
    sent = assembler.add([partial("one two three"), final("one two three")])
    last = assembler.finish(final(""))
    finals = [h for h in [*sent, last] if h.is_final and h.text]
    assert [h.text for h in sent if not h.is_final] == ["one two three"]
    assert [h.text for h in finals] == ["1 2 3"]


def test_optimize_final_result_off_keeps_the_words():
    assembler = TranscriptAssembler(continuous=True, optimize_final=False, language="en-US")
    assert assembler.add([final("one two three")])[0].text == "one two three"


def test_optimize_final_result_on_the_joined_final():
    assembler = TranscriptAssembler(continuous=False, optimize_final=True, language="en-US")
    assembler.add([final("one two")])
    assert assembler.finish(final("three")).text == "1 2 3"
