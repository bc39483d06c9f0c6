"""SEPIA wire messages: parsing what clients send, building what the server sends.

Plain functions on dicts and strings, no sockets, so every rule of the wire
contract can be tested on its own.  Field names, types and codes are the
contract (``shared/sepia-protocol.md`` §1.3-1.7) and must not change.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from stt.actions import SessionOptions
from stt.catalog.specs import normalize_language
from stt.engines.base import MAX_ALTERNATIVES, Hypothesis, RecognitionOptions, Word
from stt.errors import InvalidMessage, SttError
from stt.pcm import DEFAULT_SAMPLE_RATE, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE

#: Server message ids run 1..999999 and wrap, like the old server's.
MAX_MSG_ID = 999_999
#: Phrase lists are grammars: keep them to what a grammar can sensibly hold.
MAX_PHRASES = 1000
MAX_PHRASE_LENGTH = 200


class MessageIds:
    """Process-wide counter for server-generated ``msg_id``s (used on the event loop only)."""

    def __init__(self) -> None:
        self._last = 0

    def next(self) -> int:
        self._last = self._last % MAX_MSG_ID + 1
        return self._last


#: The ``msg_id`` of a server-generated message until it is stamped as it is sent.
UNSTAMPED = None


def stamp(message: Mapping[str, Any], ids: MessageIds) -> Mapping[str, Any]:
    """The message as it goes on the wire: a server-generated id is taken now.

    Taking it when sending, not when the message is made, keeps the ids a client
    receives in order even when a message made earlier waits behind later ones
    (an error queued behind a final, a ping sent ahead of queued results).
    """
    if message["msg_id"] is not UNSTAMPED:
        return message  # echoes the client's id (welcome ack, audioend response)
    return {**message, "msg_id": ids.next()}


@dataclass(frozen=True, slots=True)
class ClientMessage:
    """One JSON message from a client, validated like the old server's pydantic model."""

    type: str
    msg_id: int
    data: Mapping[str, Any] | None = None
    client_id: str | None = None
    access_token: str | None = None


def _reject_constant(name: str) -> None:
    """JSON has no NaN or Infinity, though Python's parser accepts them."""
    raise ValueError(name)


def parse_client_message(text: str) -> ClientMessage:
    """Validate a text frame; anything off raises :class:`InvalidMessage` (400)."""
    try:
        raw = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise InvalidMessage("Message is not valid JSON.") from None
    if not isinstance(raw, dict):
        raise InvalidMessage("Message must be a JSON object.")
    kind = raw.get("type")
    if not isinstance(kind, str) or not kind:
        raise InvalidMessage("Message needs a 'type' string.")
    msg_id = raw.get("msg_id")
    if isinstance(msg_id, bool) or not isinstance(msg_id, int):
        raise InvalidMessage("Message needs an integer 'msg_id'.")
    data = raw.get("data")
    if data is not None and not isinstance(data, dict):
        raise InvalidMessage("'data' must be an object or null.")
    for key in ("client_id", "access_token"):
        if raw.get(key) is not None and not isinstance(raw[key], str):
            raise InvalidMessage(f"'{key}' must be a string or null.")
    return ClientMessage(
        type=kind,
        msg_id=msg_id,
        data=data,
        client_id=raw.get("client_id"),
        access_token=raw.get("access_token"),
    )


def parse_welcome_options(data: Mapping[str, Any] | None) -> SessionOptions:
    """Read the welcome ``data``; unknown keys are ignored, wrong types are a 400."""
    data = data or {}
    sample_rate = data.get("samplerate")
    default = float(DEFAULT_SAMPLE_RATE)
    rate = _number(data, "samplerate", default) if sample_rate else default
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise InvalidMessage(
            f"'samplerate' {rate:g} is out of range ({MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE})."
        )
    language = _text(data, "language")
    alternatives = int(_number(data, "alternatives", 1))
    if not 0 <= alternatives <= MAX_ALTERNATIVES:
        raise InvalidMessage(f"'alternatives' must be 0 to {MAX_ALTERNATIVES}.")
    known = {"samplerate", "language", "model", "task", "continuous", "optimizeFinalResult",
             "interimResults", "alternatives", "words", "words_ts", "phrases", "phrase_list",
             "speaker"}  # fmt: skip
    recognition = RecognitionOptions(
        sample_rate=rate,
        alternatives=alternatives,
        words=_flag(data, "words", False, alias="words_ts"),
        phrases=_phrases(data),
        speaker=_flag(data, "speaker", False),
        language=normalize_language(language) if language else None,
        extra={k: v for k, v in data.items() if k not in known},
    )
    return SessionOptions(
        language=recognition.language,
        model=_text(data, "model"),
        task=_text(data, "task"),
        continuous=_flag(data, "continuous", False),
        optimize_final=_flag(data, "optimizeFinalResult", False),
        interim_results=_flag(data, "interimResults", True),
        recognition=recognition,
    )


def _text(data: Mapping[str, Any], key: str) -> str | None:
    """Empty string, null, 0 and false all mean "not given" (the old server used truthiness)."""
    value = data.get(key)
    if not value:
        return None
    if not isinstance(value, str):
        raise InvalidMessage(f"'{key}' must be a string.")
    return value.strip() or None


def _number(data: Mapping[str, Any], key: str, default: float) -> float:
    value = data.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidMessage(f"'{key}' must be a number.")
    return float(value)


def _flag(data: Mapping[str, Any], key: str, default: bool, *, alias: str | None = None) -> bool:
    value = data.get(key)
    if value is None and alias:
        value = data.get(alias)
    if value is None:
        return default
    if not isinstance(value, bool | int):
        raise InvalidMessage(f"'{key}' must be true or false.")
    return bool(value)


def _phrases(data: Mapping[str, Any]) -> tuple[str, ...]:
    value = data.get("phrases") or data.get("phrase_list")
    if not value:
        return ()
    if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
        raise InvalidMessage("'phrases' must be a list of strings.")
    if len(value) > MAX_PHRASES or any(len(p) > MAX_PHRASE_LENGTH for p in value):
        raise InvalidMessage(
            f"'phrases' allows {MAX_PHRASES} phrases of {MAX_PHRASE_LENGTH} characters."
        )
    return tuple(p.strip() for p in value if p.strip())


def encode(message: Mapping[str, Any]) -> str:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"))


def _message(kind: str, msg_id: int | None, code: int = 200, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "msg_id": msg_id, "code": code, **fields}


def welcome_message(msg_id: int, info: Mapping[str, Any]) -> dict[str, Any]:
    """The welcome ack echoes the client's ``msg_id``."""
    return _message("welcome", msg_id, info=dict(info))


def audioend_response(msg_id: int) -> dict[str, Any]:
    return _message("response", msg_id, response="audioend")


def ping_message(msg_id: int | None) -> dict[str, Any]:
    return _message("ping", msg_id)


def error_message(msg_id: int | None, error: SttError) -> dict[str, Any]:
    return _message("error", msg_id, error.code, name=error.name, message=error.message)


def result_message(
    msg_id: int | None, hypothesis: Hypothesis, *, words: bool, speaker: bool
) -> dict[str, Any]:
    """A partial or final; ``features`` holds only what the session asked for."""
    final = hypothesis.is_final
    features: dict[str, Any] = {}
    if words:
        features["words"] = [_word(w) for w in hypothesis.words] if final else []
    if speaker:
        features["speaker_vector"] = list(hypothesis.speaker_vector) if final else []
    message = _message(
        "result",
        msg_id,
        transcript=hypothesis.text,
        isFinal=final,
        confidence=hypothesis.confidence if final else -1,
        features=features,
    )
    if final and hypothesis.alternatives is not None:
        message["alternatives"] = [
            {"text": a.text, "confidence": a.confidence, "result": [_word(w) for w in a.words]}
            for a in hypothesis.alternatives
        ]
    return message


def _word(word: Word) -> dict[str, Any]:
    entry: dict[str, Any] = {"word": word.word, "start": word.start, "end": word.end}
    if word.confidence is not None:
        entry["conf"] = word.confidence
    return entry
