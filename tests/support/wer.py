"""Word error rate against reference transcripts, and the English test clips that have them."""

from __future__ import annotations

import re
import wave
from pathlib import Path

TEST_DATA = Path("/usr/share/pocketsphinx/test/data")
LIBRIVOX = TEST_DATA / "librivox"
GO_FORWARD = TEST_DATA / "goforward.raw"
SAMPLE_RATE = 16000

ONES = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen",
]  # fmt: skip
TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
#: Abbreviations Whisper writes where a transcript spells the word out.
SPOKEN_FORMS = {"mr": "mister", "mrs": "missus", "dr": "doctor"}


def number_words(number: int) -> list[str]:
    """English words for 0..999, as transcripts spell numbers."""
    if number < 20:
        return [ONES[number]]
    if number < 100:
        return [TENS[number // 10]] + (number_words(number % 10) if number % 10 else [])
    rest = number_words(number % 100) if number % 100 else []
    return [ONES[number // 100], "hundred", *rest]


def normalize(text: str) -> list[str]:
    """Words to score: lowercase, no punctuation (hyphens split), numbers and titles spelled."""
    tokens = re.sub(r"[^\w\s]", " ", text.lower().replace("'", "")).split()
    words: list[str] = []
    for token in tokens:
        if token.isdigit() and int(token) < 1000:
            words.extend(number_words(int(token)))
        else:
            words.append(SPOKEN_FORMS.get(token, token))
    return words


def word_errors(hypothesis: str, reference: str) -> tuple[int, int]:
    """(substitutions + deletions + insertions, reference length) after normalising."""
    hyp, ref = normalize(hypothesis), normalize(reference)
    row = list(range(len(hyp) + 1))
    for i, ref_word in enumerate(ref, 1):
        previous, row[0] = row[0], i
        for j, hyp_word in enumerate(hyp, 1):
            previous, row[j] = (
                row[j],
                min(row[j] + 1, row[j - 1] + 1, previous + (ref_word != hyp_word)),
            )
    return row[len(hyp)], len(ref)


def wer(hypothesis: str, reference: str) -> float:
    errors, length = word_errors(hypothesis, reference)
    return errors / max(length, 1)


def librivox_transcripts() -> dict[str, str]:
    """File id -> transcript, from the package's ``transcription`` file."""
    pattern = re.compile(r"<s>(.*)</s>\s*\((.+)\)")
    lines = (LIBRIVOX / "transcription").read_text().splitlines()
    return {m[2]: m[1].strip() for line in lines if (m := pattern.search(line))}


def read_wav(path: Path) -> bytes:
    with wave.open(str(path)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (SAMPLE_RATE, 1, 2)
        return wav.readframes(wav.getnframes())
