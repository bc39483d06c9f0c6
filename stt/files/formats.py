"""A transcript in OpenAI's response formats: json, text, srt, vtt, verbose_json.

Subtitles follow the usual reading limits: a cue is cut at a word boundary once it
would run past :data:`MAX_CUE_CHARS` characters (two lines) or :data:`MAX_CUE_S` seconds,
so a long utterance becomes several cues that each show while their words are said.
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from stt.catalog.specs import short_code
from stt.files.transcript import Segment, Transcript

FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
#: What each format is sent as.
MEDIA_TYPES = {
    "json": "application/json",
    "verbose_json": "application/json",
    "text": "text/plain; charset=utf-8",
    "srt": "application/x-subrip; charset=utf-8",
    "vtt": "text/vtt; charset=utf-8",
}
MAX_CUE_CHARS = 84
MAX_CUE_S = 7.0
#: ``verbose_json`` names the language in English words, as Whisper's API does.
LANGUAGE_NAMES = {
    "ar": "arabic",
    "cs": "czech",
    "da": "danish",
    "de": "german",
    "el": "greek",
    "en": "english",
    "es": "spanish",
    "fi": "finnish",
    "fr": "french",
    "hi": "hindi",
    "it": "italian",
    "ja": "japanese",
    "ko": "korean",
    "nl": "dutch",
    "pl": "polish",
    "pt": "portuguese",
    "ru": "russian",
    "sv": "swedish",
    "tr": "turkish",
    "uk": "ukrainian",
    "zh": "chinese",
}


def render(transcript: Transcript, response_format: str, granularities: Sequence[str] = ()) -> str:
    """The response body for ``response_format`` (one of :data:`FORMATS`)."""
    if response_format == "text":
        return transcript.text + "\n"
    if response_format == "srt":
        return srt(transcript)
    if response_format == "vtt":
        return vtt(transcript)
    if response_format == "verbose_json":
        return json.dumps(verbose_json(transcript, granularities), ensure_ascii=False)
    return json.dumps({"text": transcript.text, "usage": usage(transcript)}, ensure_ascii=False)


def usage(transcript: Transcript) -> dict[str, Any]:
    """What the request used, as OpenAI reports it for audio models billed by duration."""
    return {"type": "duration", "seconds": math.ceil(transcript.duration_s)}


def language_name(language: str) -> str:
    code = short_code(language)
    return LANGUAGE_NAMES.get(code, code)


def verbose_json(transcript: Transcript, granularities: Sequence[str] = ()) -> dict[str, Any]:
    """Whisper's verbose response: segments (by default) and, on request, words."""
    body: dict[str, Any] = {
        "task": "transcribe",
        "language": language_name(transcript.language),
        "duration": round(transcript.duration_s, 3),
        "text": transcript.text,
    }
    if "segment" in granularities or not granularities:
        body["segments"] = [_segment_json(i, s) for i, s in enumerate(transcript.segments)]
    if "word" in granularities:
        body["words"] = [
            {"word": w.word, "start": round(w.start, 3), "end": round(w.end, 3)}
            for w in transcript.words
        ]
    body["usage"] = usage(transcript)
    return body


def _segment_json(index: int, segment: Segment) -> dict[str, Any]:
    confidence = segment.confidence
    encoded = segment.text.encode()
    return {
        "id": index,
        "seek": 0,
        "start": round(segment.start, 3),
        "end": round(segment.end, 3),
        "text": segment.text,
        # Token ids and sampling details are Whisper's internals, which the engines do not
        # report; the fields are there for clients that read them.
        "tokens": [],
        "temperature": 0.0,
        "avg_logprob": round(math.log(confidence), 4) if confidence else 0.0,
        "compression_ratio": round(len(encoded) / max(len(zlib.compress(encoded)), 1), 4),
        "no_speech_prob": 0.0,
    }


@dataclass(frozen=True, slots=True)
class Cue:
    start: float
    end: float
    text: str


def cues(transcript: Transcript) -> Iterator[Cue]:
    """Subtitle cues: each segment, cut at word boundaries where it is too long to read."""
    for segment in transcript.segments:
        if not segment.words:
            yield Cue(segment.start, max(segment.end, segment.start), segment.text)
            continue
        words = list(segment.words)
        first = 0
        for i in range(1, len(words) + 1):
            if i < len(words):
                text = " ".join(w.word for w in words[first : i + 1])
                if len(text) <= MAX_CUE_CHARS and words[i].end - words[first].start <= MAX_CUE_S:
                    continue
            piece = words[first:i]
            yield Cue(piece[0].start, piece[-1].end, " ".join(w.word for w in piece))
            first = i


def srt(transcript: Transcript) -> str:
    blocks = [
        f"{n}\n{_timestamp(c.start, ',')} --> {_timestamp(c.end, ',')}\n{c.text}\n"
        for n, c in enumerate(cues(transcript), start=1)
    ]
    return "\n".join(blocks)


def vtt(transcript: Transcript) -> str:
    blocks = [
        f"{_timestamp(c.start, '.')} --> {_timestamp(c.end, '.')}\n{c.text}\n"
        for c in cues(transcript)
    ]
    return "\n".join(["WEBVTT\n", *blocks])


def _timestamp(seconds: float, decimal: str) -> str:
    millis = round(max(seconds, 0.0) * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal}{millis:03d}"
