"""From engine hypotheses to the results a session sends, per the SEPIA rules.

Engines only report what they heard.  Which of it goes to the client is the
same for every engine and lives here: unchanged partials are dropped,
``interimResults: false`` drops all partials, continuous sessions get a final
per utterance, other sessions get the utterances joined into one final after
``audioend``, and ``optimizeFinalResult`` rewrites final transcripts only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from stt.engines.base import Hypothesis
from stt.sepia.postprocess import optimize_transcript


class TranscriptAssembler:
    def __init__(
        self,
        *,
        continuous: bool,
        interim_results: bool = True,
        optimize_final: bool = False,
        language: str | None = None,
    ) -> None:
        self._continuous = continuous
        self._interim_results = interim_results
        self._optimize_language = language if optimize_final else None
        self._last_partial: str | None = None
        #: Utterance finals held back until ``audioend`` (non-continuous sessions).
        self._utterances: list[Hypothesis] = []

    def add(self, hypotheses: Iterable[Hypothesis]) -> list[Hypothesis]:
        """What to send now for these engine hypotheses."""
        to_send: list[Hypothesis] = []
        for hypothesis in hypotheses:
            if not hypothesis.is_final:
                if self._interim_results and hypothesis.text != self._last_partial:
                    to_send.append(hypothesis)
                self._last_partial = hypothesis.text
                continue
            # After an utterance end the engine's partials start over from "".
            self._last_partial = None
            if self._continuous:
                if hypothesis.text:
                    to_send.append(self._optimized(hypothesis))
            elif hypothesis.text:
                self._utterances.append(hypothesis)
        return to_send

    def finish(self, last: Hypothesis) -> Hypothesis:
        """The one final after ``audioend``: in continuous mode only what was still open."""
        if self._continuous:
            return self._optimized(last)
        utterances = [*self._utterances, last] if last.text else self._utterances
        self._utterances = []
        if not utterances:
            return self._optimized(last)
        return self._optimized(join_utterances(utterances))

    def _optimized(self, final: Hypothesis) -> Hypothesis:
        if self._optimize_language is None or not final.text:
            return final
        return replace(final, text=optimize_transcript(final.text, self._optimize_language))


def join_utterances(utterances: list[Hypothesis]) -> Hypothesis:
    """One final for several: texts joined by a space, the lowest confidence, all words."""
    last = utterances[-1]
    return Hypothesis(
        text=" ".join(u.text for u in utterances),
        is_final=True,
        confidence=min(u.confidence for u in utterances),
        words=tuple(w for u in utterances for w in u.words),
        alternatives=last.alternatives if len(utterances) == 1 else _no_alternatives(last),
        speaker_vector=next(
            (u.speaker_vector for u in reversed(utterances) if u.speaker_vector), ()
        ),
    )


def _no_alternatives(last: Hypothesis) -> tuple[()] | None:
    """Alternatives of single utterances do not combine; keep the key's shape."""
    return None if last.alternatives is None else ()
