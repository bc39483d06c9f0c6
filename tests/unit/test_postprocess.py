"""Final-result post-processing: digits for numbers, written times and German dates."""

from __future__ import annotations

import pytest

from stt.sepia import postprocess
from stt.sepia.postprocess import optimize_transcript


@pytest.mark.parametrize(
    ("language", "text", "expected"),
    [
        ("en-US", "one two three four five six seven eight", "1 2 3 4 5 6 7 8"),
        ("de-DE", "eins zwei drei vier fünf sechs sieben acht", "1 2 3 4 5 6 7 8"),
        ("en", "one, two, three.", "1, 2, 3."),
        ("en", "twenty one cows and three hundred sheep", "21 cows and 300 sheep"),
        ("de", "zweihundertfünfundvierzig Euro", "245 Euro"),
        ("fr-FR", "vingt et un", "21"),
        ("es-ES", "veintiuno", "21"),
        ("it-IT", "ventuno", "21"),
        ("nl-NL", "eenentwintig", "21"),
    ],
)
def test_spelled_out_numbers_become_digits(language: str, text: str, expected: str) -> None:
    assert optimize_transcript(text, language) == expected


@pytest.mark.parametrize(
    ("language", "text", "expected"),
    [
        ("en", "the twenty first time", "the 21st time"),
        ("en", "the third one", "the 3rd one"),
        ("de", "am dritten März", "am 3. März"),
        ("de", "zum zehnten Mal", "zum 10. Mal"),
    ],
)
def test_ordinals_become_digits(language: str, text: str, expected: str) -> None:
    assert optimize_transcript(text, language) == expected


@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("en", "one of them"),
        ("en", "no one knows"),
        ("en", "wait a second"),
        ("en", "I have two cats"),
        ("de", "ein Hund und eine Katze"),
        ("de", "ich habe zwei Katzen"),
        ("de", "ich kaufe eine Uhr"),
        ("de", "zwei Uhren"),
    ],
)
def test_isolated_small_numbers_stay_prose(language: str, text: str) -> None:
    assert optimize_transcript(text, language) == text


@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("en", "hello  world,\tno numbers here\n"),
        ("de", "Hallo Welt , wie geht's?"),
        ("de", "Ich bin um 12:30 Uhr am 01.01.2021 da."),
        ("en", "see you at 7:30 pm"),
        ("en", " "),
    ],
)
def test_text_without_numbers_comes_back_unchanged(language: str, text: str) -> None:
    assert optimize_transcript(text, language) == text


@pytest.mark.parametrize("language", ["ko-KR", "ja", "xx-YY", None, "", "  "])
def test_languages_without_rules_leave_text_alone(language: str | None) -> None:
    text = "one two three at twelve Uhr thirty, 12 Uhr 30, 1. 1. 2021, 7 30 pm"
    assert optimize_transcript(text, language) == text


@pytest.mark.parametrize("language", ["de", "de-DE", "de_DE", "DE-de", " de-AT "])
def test_language_codes_select_by_short_code(language: str) -> None:
    assert optimize_transcript("zwölf Uhr dreißig", language) == "12:30 Uhr"


def test_empty_text_is_returned_as_is() -> None:
    assert optimize_transcript("", "en-US") == ""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ein Uhr", "1 Uhr"),
        ("ein Uhr. Zwei Uhr. Dreizehn Uhr.", "1 Uhr. 2 Uhr. 13 Uhr."),
        ("um eins Uhr", "um 1 Uhr"),
        ("zwo Uhr", "2 Uhr"),
        ("null Uhr", "0 Uhr"),
        ("zwölf Uhr dreißig", "12:30 Uhr"),
        ("sieben Uhr fünf", "7:05 Uhr"),
        ("Um zwölf Uhr dreißig.", "Um 12:30 Uhr."),
        ("siebzehn uhr fünfzehn", "17:15 Uhr"),
        ("Ist es null Uhr eins?", "Ist es 0:01 Uhr?"),
        ("zwölf Uhr zwei", "12:02 Uhr"),
        ("zwölf Uhr null", "12:00 Uhr"),
        ("Es ist dreiundzwanzig Uhr neunundfünfzig!", "Es ist 23:59 Uhr!"),
        ("vierundzwanzig Uhr null", "24:00 Uhr"),
        (
            "zwölf Uhr dreißig am Samstag und zwei Uhr fünfzehn am Montag",
            "12:30 Uhr am Samstag und 2:15 Uhr am Montag",
        ),
        ("dreizehn Uhr vier und zwanzig", "13:24 Uhr"),
        ("12 Uhr 30", "12:30 Uhr"),
    ],
)
def test_german_times(text: str, expected: str) -> None:
    assert optimize_transcript(text, "de-DE") == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("fünfundzwanzig Uhr siebzig", "25 Uhr 70"),
        ("sechsundzwanzig Uhr drei", "26 Uhr 3"),
        ("zwölf Uhr sechzig", "12 Uhr 60"),
        ("25 Uhr 70", "25 Uhr 70"),
        ("12 Uhr 300 Leute", "12 Uhr 300 Leute"),
        ("12 Uhr 30,5", "12 Uhr 30,5"),
        # After "Uhr", "ein" is an article, not a minute.
        ("zwölf Uhr ein Treffen", "12 Uhr ein Treffen"),
    ],
)
def test_german_impossible_or_partial_times_keep_their_digits(text: str, expected: str) -> None:
    assert optimize_transcript(text, "de") == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("am ersten ersten zweitausend einundzwanzig", "am 01.01.2021"),
        ("Am ersten ersten zweitausend einundzwanzig.", "Am 01.01.2021."),
        ("Am sechsten vierten?", "Am 06.04.?"),
        ("erster erster", "01.01."),
        ("zwei und zwanzigster zweiter zweitausend zwei und zwanzig", "22.02.2022"),
        (
            "am einunddreißigsten zwölften neunzehnhundertneunundneunzig",
            "am 31.12.1999",
        ),
        ("1. 1., 2. 2., 3. 3..", "01.01., 02.02., 03.03.."),
        (
            "am dritten zwölften um zwölf Uhr dreißig",
            "am 03.12. um 12:30 Uhr",
        ),
    ],
)
def test_german_dates(text: str, expected: str) -> None:
    assert optimize_transcript(text, "de-DE") == expected


@pytest.mark.parametrize(
    "text",
    [
        "am 32. 1.",
        "am 12. 13.",
        "am 0. 5.",
        "Version 1.2.3",
        "am 3. März",
    ],
)
def test_german_impossible_or_incomplete_dates_are_left_alone(text: str) -> None:
    assert optimize_transcript(text, "de") == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("one o'clock", "1 o'clock"),
        ("one pm", "1 pm"),
        ("One AM", "1 AM"),
        ("two p.m.", "2 p.m."),
        ("five o'clock", "5 o'clock"),
        ("seven thirty pm", "7:30 pm"),
        ("ten fifteen a.m.", "10:15 a.m."),
        ("it's ten thirty a.m..", "it's 10:30 a.m.."),
        ("its one thirty PM!", "its 1:30 PM!"),
        ("seven o five pm", "7:05 pm"),
        ("twelve forty five o'clock", "12:45 o'clock"),
        ("eight PM, six thirty AM", "8 PM, 6:30 AM"),
        ("ten o clock", "10 o clock"),
        ("one o clock", "1 o clock"),
        ("five o\u2019clock", "5 o\u2019clock"),
        ("five o`clock", "5 o`clock"),
        ("7 30 pm", "7:30 pm"),
    ],
)
def test_english_times(text: str, expected: str) -> None:
    assert optimize_transcript(text, "en-US") == expected


@pytest.mark.parametrize(
    "text",
    [
        "13 30 pm",
        "0 30 am",
        "7 60 pm",
        "7 30 amount",
        "1.5 30 pm",
    ],
)
def test_english_impossible_times_are_left_alone(text: str) -> None:
    assert optimize_transcript(text, "en") == text


def test_english_dates_are_not_reformatted() -> None:
    text = "the twenty second of February two thousand twenty two"
    assert optimize_transcript(text, "en") == "the 22nd of February 2022"


@pytest.mark.parametrize(
    "text",
    [
        "12 Uhr 30",
        "ein Uhr",
        "1. 1. 2021",
    ],
)
def test_english_text_gets_no_german_rules(text: str) -> None:
    assert optimize_transcript(text, "en-GB") == text


def test_german_text_gets_no_english_rules() -> None:
    assert optimize_transcript("sieben dreißig pm", "de") == "7 30 pm"


def test_text2num_failure_leaves_numbers_but_still_formats(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken_alpha2digit(text: str, lang: str, threshold: float) -> str:
        raise RuntimeError("text2num bug")

    monkeypatch.setattr(postprocess, "alpha2digit", broken_alpha2digit)
    assert optimize_transcript("zwölf Uhr dreißig", "de") == "zwölf Uhr dreißig"
    assert optimize_transcript("12 Uhr 30", "de") == "12:30 Uhr"


def test_text_text2num_cannot_encode_does_not_raise() -> None:
    text = "one two \ud800 three"
    assert optimize_transcript(text, "en") == text
