"""The rules of OpenAI's ``/v1/audio/transcriptions`` and ``/v1/models``, without I/O.

A request's form fields become a :class:`TranscriptionRequest` (or an
``InvalidRequest`` naming the field); our errors become OpenAI's error body and
HTTP status; a streamed transcription is a series of server-sent events.  The
server's ASGI layer (``stt.server.openai_app``) only moves bytes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from stt.catalog.specs import ModelSpec
from stt.errors import (
    AuthenticationFailed,
    InvalidRequest,
    ModelNotFound,
    ServerBusy,
    SttError,
    TooManyJobs,
)
from stt.files.formats import FORMATS

#: OpenAI's model names, served by the default model (or the one for the language).
ALIASES = ("whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe")
GRANULARITIES = ("word", "segment")
#: What ``/v1/models`` says owns the models.
OWNER = "sepia-stt"


@dataclass(frozen=True, slots=True)
class TranscriptionRequest:
    #: Our model's name, or None for the default (OpenAI's names are aliases of it).
    model: str | None
    language: str | None = None
    prompt: str | None = None
    temperature: float = 0.0
    response_format: str = "json"
    granularities: tuple[str, ...] = ()
    stream: bool = False


def parse_fields(fields: Mapping[str, Sequence[str]]) -> TranscriptionRequest:
    """The form's fields (all values of each name) as a request; ``InvalidRequest`` names
    the field that is wrong."""

    def one(name: str) -> str | None:
        values = fields.get(name) or fields.get(f"{name}[]") or ()
        return values[-1].strip() if values else None

    model = one("model")
    if not model:
        raise InvalidRequest("You must provide a model parameter.", "model")
    response_format = one("response_format") or "json"
    if response_format not in FORMATS:
        raise InvalidRequest(
            f"response_format {response_format!r} is not one of {', '.join(FORMATS)}.",
            "response_format",
        )
    granularities = tuple(
        g.strip()
        for g in [
            *fields.get("timestamp_granularities[]", ()),
            *fields.get("timestamp_granularities", ()),
        ]
    )
    unknown = [g for g in granularities if g not in GRANULARITIES]
    if unknown:
        raise InvalidRequest(
            f"timestamp_granularities {unknown[0]!r} is not word or segment.",
            "timestamp_granularities",
        )
    return TranscriptionRequest(
        model=None if model in ALIASES else model,
        language=one("language") or None,
        prompt=one("prompt") or None,
        temperature=_temperature(one("temperature")),
        response_format=response_format,
        granularities=granularities,
        stream=_flag(one("stream"), "stream"),
    )


def _temperature(raw: str | None) -> float:
    if not raw:
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        raise InvalidRequest(f"temperature {raw!r} is not a number.", "temperature") from None
    if not 0.0 <= value <= 1.0:
        raise InvalidRequest(f"temperature {raw} is not between 0 and 1.", "temperature")
    return value


def _flag(raw: str | None, name: str) -> bool:
    if raw is None or raw.lower() in ("", "false", "0"):
        return False
    if raw.lower() in ("true", "1"):
        return True
    raise InvalidRequest(f"{name} {raw!r} is not true or false.", name)


# -- errors ---------------------------------------------------------------------------------


def error_response(error: SttError) -> tuple[int, dict[str, Any]]:
    """HTTP status and OpenAI's error body for one of our errors."""
    status, kind, code = error.code, "invalid_request_error", None
    param = error.field if isinstance(error, InvalidRequest) else None
    if isinstance(error, ModelNotFound):
        status, code, param = 404, "model_not_found", "model"
    elif isinstance(error, AuthenticationFailed):
        code = "invalid_api_key"
    elif isinstance(error, TooManyJobs):
        kind, code = "rate_limit_error", "rate_limit_exceeded"
    elif isinstance(error, ServerBusy):
        kind, code = "server_error", "server_busy"
    elif status >= 500:
        kind = "server_error"
    body = {"error": {"message": error.message, "type": kind, "param": param, "code": code}}
    return status, body


# -- models ---------------------------------------------------------------------------------


def models_list(models: Sequence[ModelSpec], created: int) -> dict[str, Any]:
    """``GET /v1/models``: our models, then OpenAI's names that stand for the default."""
    names = [m.name for m in models] + list(ALIASES if models else ())
    return {
        "object": "list",
        "data": [
            {"id": name, "object": "model", "created": created, "owned_by": OWNER} for name in names
        ],
    }


# -- streaming ------------------------------------------------------------------------------


def text_delta(delta: str) -> bytes:
    """One server-sent event with text added to the transcript."""
    return _event({"type": "transcript.text.delta", "delta": delta})


def text_done(text: str) -> bytes:
    return _event({"type": "transcript.text.done", "text": text})


def error_event(error: SttError) -> bytes:
    """A failure after the stream started: the SDK raises it as an API error."""
    return _event(error_response(error)[1])


def _event(data: Mapping[str, Any]) -> bytes:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n".encode()
