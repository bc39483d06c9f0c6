"""Post-processing of final transcripts (SEPIA's ``optimizeFinalResult``).

Engines spell numbers out ("twelve thirty pm", "am ersten ersten zweitausend
einundzwanzig"); clients want them written the usual way ("12:30 pm",
"am 01.01.2021").  Numbers become digits with text2num for every language it
knows, then German and English times, and German dates, get their written form.
Nothing here raises: a transcript is always worth more than a formatting error.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from text_to_num import alpha2digit

#: Languages text2num converts; others keep their numbers spelled out.
TEXT2NUM_LANGUAGES = frozenset({"en", "fr", "es", "pt", "de", "nl", "da", "it"})

#: text2num 3.x leaves an isolated number (one not part of a run like "one two
#: three" or a compound like "twenty first") spelled out if its value is below
#: this.  It is a single threshold for cardinals and ordinals, so 3 keeps prose
#: like "one of them", "ein Hund" and "wait a second" intact; the time rules
#: below convert the small words that really are hours or minutes.
ISOLATED_NUMBER_THRESHOLD = 3

#: Number words below the threshold that can be an hour or minute of a time.
SMALL_NUMBERS = {"null": 0, "ein": 1, "eins": 1, "zwei": 2, "zwo": 2, "one": 1, "two": 2}

# Not preceded by a letter, digit or a number separator: the start of a whole number.
_NUMBER_START = r"(?<![\w.,:])"
# Not followed by a letter or digit, nor by a decimal part: the end of a whole number.
_NUMBER_END = r"(?!\w|[.,:]\d)"

_GERMAN_HOUR_WORD = re.compile(r"\b(?P<word>null|eins?|zwei|zwo)(?=\s+uhr\b)", re.IGNORECASE)
# "ein" is left out of the minutes: after "Uhr" it is an article ("zwölf Uhr ein Treffen").
_GERMAN_TIME = re.compile(
    _NUMBER_START
    + r"(?P<hour>\d{1,2})\s+uhr\s+(?P<minute>\d{1,2}|null|eins|zwei|zwo)"
    + _NUMBER_END,
    re.IGNORECASE,
)
_GERMAN_DATE = re.compile(
    _NUMBER_START
    + r"(?P<day>\d{1,2})\.\s+(?P<month>\d{1,2})\.(?!\d)(?:\s+(?P<year>\d{4})"
    + _NUMBER_END
    + ")?"
)

# Apostrophes ASR and keyboards put in "o'clock": ASCII, right single quote, grave, acute.
_APOSTROPHE = "['\u2019`\u00b4]"
_ENGLISH_TIME_MARKER = rf"(?:a\.m\.|p\.m\.|am|pm|o(?:\s|{_APOSTROPHE})?clock)(?!\w)"
_ENGLISH_HOUR_WORD = re.compile(rf"\b(?P<word>one|two)(?=\s+{_ENGLISH_TIME_MARKER})", re.IGNORECASE)
_ENGLISH_TIME = re.compile(
    _NUMBER_START
    + rf"(?P<hour>\d{{1,2}})\s+(?P<minute>\d{{1,2}})\s+(?P<marker>{_ENGLISH_TIME_MARKER})",
    re.IGNORECASE,
)
# text2num reads the "o" of "o clock" (any apostrophe but the ASCII one) as a zero digit:
# "ten o clock" -> "10 0 clock".
_ENGLISH_ZERO_CLOCK = re.compile(
    rf"(?<=\d)(?P<gap>\s+)0(?=(?:\s|{_APOSTROPHE})clock\b)", re.IGNORECASE
)


def optimize_transcript(text: str, language: str | None) -> str:
    """Numbers to digits (text2num) then date/time formatting, for the session language."""
    short_language = _short_language_code(language)
    if not text or not short_language:
        return text
    text = _numbers_to_digits(text, short_language)
    format_dates_and_times = _DATE_AND_TIME_FORMATTERS.get(short_language)
    return format_dates_and_times(text) if format_dates_and_times else text


def _short_language_code(language: str | None) -> str:
    """The short code ("de" for "de-DE", "de_DE" or "DE") that selects the rules."""
    if not language:
        return ""
    return re.split(r"[-_]", language.strip(), maxsplit=1)[0].lower()


def _numbers_to_digits(text: str, short_language: str) -> str:
    """Spelled-out numbers as digits; the text as it was if text2num cannot handle it."""
    if short_language not in TEXT2NUM_LANGUAGES:
        return text
    try:
        digits: str = alpha2digit(text, short_language, ISOLATED_NUMBER_THRESHOLD)
    except Exception:
        # Odd input (e.g. lone surrogates) must not cost the client its final result.
        return text
    return digits


def _number_value(token: str) -> int:
    """The value of a digit string or of one of the small number words."""
    return int(token) if token.isdigit() else SMALL_NUMBERS[token.lower()]


def _small_number_to_digit(match: re.Match[str]) -> str:
    """The digit for a small number word the rules found in a time."""
    return str(SMALL_NUMBERS[match["word"].lower()])


def _format_german_time(match: re.Match[str]) -> str:
    """Write "12 Uhr 30" as "12:30 Uhr"; an impossible time stays as it was said."""
    hour = int(match["hour"])
    minute = _number_value(match["minute"])
    if hour > 24 or minute > 59:
        return match[0]
    return f"{hour}:{minute:02d} Uhr"


def _format_german_date(match: re.Match[str]) -> str:
    """Write "1. 1. 2021" as "01.01.2021"; an impossible day or month stays as it was."""
    day = int(match["day"])
    month = int(match["month"])
    if not (1 <= day <= 31 and 1 <= month <= 12):
        return match[0]
    return f"{day:02d}.{month:02d}.{match['year'] or ''}"


def _format_german_dates_and_times(text: str) -> str:
    text = _GERMAN_HOUR_WORD.sub(_small_number_to_digit, text)
    text = _GERMAN_TIME.sub(_format_german_time, text)
    return _GERMAN_DATE.sub(_format_german_date, text)


def _format_english_time(match: re.Match[str]) -> str:
    """Write "7 30 pm" as "7:30 pm"; an impossible time stays as it was said."""
    hour = int(match["hour"])
    minute = int(match["minute"])
    if not (1 <= hour <= 12 and minute <= 59):
        return match[0]
    return f"{hour}:{minute:02d} {match['marker']}"


def _format_english_times(text: str) -> str:
    """English dates stay as text2num wrote them ("22nd of February 2022")."""
    text = _ENGLISH_ZERO_CLOCK.sub(r"\g<gap>o", text)
    text = _ENGLISH_HOUR_WORD.sub(_small_number_to_digit, text)
    return _ENGLISH_TIME.sub(_format_english_time, text)


_DATE_AND_TIME_FORMATTERS: dict[str, Callable[[str], str]] = {
    "de": _format_german_dates_and_times,
    "en": _format_english_times,
}
