"""The SEPIA session state machine, without a socket: text in, actions out, time passed in."""

from __future__ import annotations

import json
import struct

import pytest

from stt.engines.base import Hypothesis, Word
from stt.errors import (
    AsrEngineError,
    AuthenticationFailed,
    ChunkProcessorError,
    EngineNotFound,
    InternalError,
    InvalidMessage,
    ModelNotFound,
    NotPossible,
    ProcessError,
    TimeoutMessage,
    Unauthorized,
)
from stt.sepia import protocol
from stt.sepia.protocol import UNSTAMPED, MessageIds
from stt.sepia.session import (
    CLOSE_INTERNAL_ERROR,
    CLOSE_NORMAL,
    CLOSE_TRY_AGAIN_LATER,
    Close,
    Decode,
    EndOfAudio,
    OpenRecognizer,
    Phase,
    Send,
    SessionProtocol,
)

TIMEOUT_S = 15.0

#: What the recognizer side would put in the welcome ack.
INFO = {
    "version": "1.0.0",
    "engine": "test",
    "models": ["m-en"],
    "languages": ["en-US"],
    "modelProperties": [{"engine": "test"}],
    "features": ["debug"],
    "options": {"language": "en-US", "model": "m-en", "task": None},
}

#: A 44-byte RIFF/WAVE header as the JS worker sends it first.
WAV_HEADER = (
    b"RIFF"
    + struct.pack("<I", 0xFFFF_FFFF)
    + b"WAVEfmt "
    + struct.pack("<IHHIIHH", 16, 1, 1, 16000, 32000, 2, 16)
    + b"data"
    + struct.pack("<I", 0x7FFF_FFFF)
)


def text(kind, msg_id=1, **fields) -> str:
    return json.dumps({"type": kind, "msg_id": msg_id, **fields})


def welcome(msg_id=1, **data) -> str:
    return text("welcome", msg_id, client_id="any", access_token="test1234", data=data)


def new_session(now=0.0) -> SessionProtocol:
    return SessionProtocol(timeout_s=TIMEOUT_S, now=now)


def opened_session(*, effective=None, now=0.0, **data) -> SessionProtocol:
    """A session whose welcome was accepted and whose recognizer is open."""
    session = new_session(now)
    [request] = session.receive_text(welcome(**data), now)
    session.recognizer_opened(request, INFO, effective or {})
    return session


def messages(actions) -> list[dict]:
    return [dict(action.message) for action in actions if isinstance(action, Send)]


def only_error(actions) -> dict:
    """The single action is an error message, and nothing closes."""
    assert len(actions) == 1, actions
    [message] = messages(actions)
    assert message["type"] == "error"
    return message


def error_of(actions) -> tuple[int, str]:
    message = only_error(actions)
    return message["code"], message["name"]


def partial(text_, **kwargs) -> Hypothesis:
    return Hypothesis(text_, is_final=False, **kwargs)


def final(text_, confidence=-1.0, **kwargs) -> Hypothesis:
    return Hypothesis(text_, is_final=True, confidence=confidence, **kwargs)


# -- before the welcome ----------------------------------------------------------------------


def test_binary_before_welcome_is_401_and_the_session_stays_open():
    session = new_session()
    assert error_of(session.receive_bytes(b"\x00\x01", 1.0)) == (401, "Unauthorized")
    assert session.phase is Phase.AWAITING_WELCOME
    # ... and a welcome still works afterwards.
    assert isinstance(session.receive_text(welcome(), 2.0)[0], OpenRecognizer)


@pytest.mark.parametrize(
    "message",
    [
        text("pong", 4),
        text("audioend", 2, data={"byteLength": 0}),
        text("chat", 3, data={"text": "hi"}),
    ],
)
def test_non_welcome_before_welcome_is_401(message):
    session = new_session()
    code, name = error_of(session.receive_text(message, 1.0))
    assert (code, name) == (401, "Unauthorized")
    assert session.phase is Phase.AWAITING_WELCOME


def test_the_error_message_text_before_welcome():
    session = new_session()
    [binary_error] = messages(session.receive_bytes(b"xx", 0))
    [text_error] = messages(session.receive_text(text("pong"), 0))
    assert "authentication" in binary_error["message"]
    assert "welcome" in text_error["message"]


# -- the welcome -----------------------------------------------------------------------------


def test_welcome_asks_to_open_a_recognizer_with_the_parsed_options():
    session = new_session()
    actions = session.receive_text(
        welcome(7, language="de_DE", continuous=True, interimResults=False), 1.0
    )
    [request] = actions
    assert isinstance(request, OpenRecognizer)
    assert request.msg_id == 7
    assert (request.client_id, request.access_token) == ("any", "test1234")
    assert request.options.language == "de-DE"
    assert request.options.continuous is True
    assert request.options.interim_results is False
    assert session.phase is Phase.STREAMING


def test_a_welcome_with_bad_options_is_400_and_may_be_retried():
    session = new_session()
    assert error_of(session.receive_text(welcome(alternatives="many"), 1.0)) == (
        400,
        "InvalidMessage",
    )
    assert session.phase is Phase.AWAITING_WELCOME
    assert isinstance(session.receive_text(welcome(), 2.0)[0], OpenRecognizer)


@pytest.mark.parametrize("after_audioend", [False, True])
def test_a_second_welcome_is_418_and_the_session_stays_open(after_audioend):
    session = opened_session()
    if after_audioend:
        session.receive_text(text("audioend", 2), 1.0)
    phase = session.phase
    assert error_of(session.receive_text(welcome(3), 2.0)) == (418, "NotPossible")
    assert session.phase is phase


def test_recognizer_opened_sends_the_welcome_ack_echoing_the_client_msg_id():
    session = new_session()
    [request] = session.receive_text(welcome(42), 0.0)
    [ack] = session.recognizer_opened(request, INFO, {"words": False})
    assert ack == Send({"type": "welcome", "msg_id": 42, "code": 200, "info": INFO})


# -- audio -------------------------------------------------------------------------------------


def test_audio_frames_become_whole_sample_decodes():
    session = opened_session()
    assert session.receive_bytes(b"\x01\x02\x03", 1.0) == [Decode(b"\x01\x02")]
    assert session.receive_bytes(b"\x04", 1.1) == [Decode(b"\x03\x04")]
    assert session.receive_bytes(b"\x05", 1.2) == []


def test_a_leading_wav_header_is_never_decoded():
    session = opened_session()
    assert session.receive_bytes(WAV_HEADER[:20], 1.0) == []
    assert session.receive_bytes(WAV_HEADER[20:] + b"\x10\x20", 1.1) == [Decode(b"\x10\x20")]


def test_audio_is_accepted_before_the_recognizer_is_open():
    session = new_session()
    session.receive_text(welcome(), 0.0)
    assert session.receive_bytes(b"\x01\x02", 0.5) == [Decode(b"\x01\x02")]


def test_audioend_ends_the_audio_and_asks_for_the_last_final():
    session = opened_session()
    session.receive_bytes(b"\x01\x02\x03", 1.0)  # the odd byte is a half sample: dropped
    actions = session.receive_text(text("audioend", 9, data={"byteLength": 3}), 2.0)
    assert actions == [EndOfAudio(9)]
    assert session.phase is Phase.AUDIO_ENDED


def test_audioend_right_after_the_welcome():
    session = new_session()
    session.receive_text(welcome(), 0.0)
    assert session.receive_text(text("audioend", 2), 1.0) == [EndOfAudio(2)]


def test_audio_after_audioend_is_a_process_error_per_frame():
    session = opened_session()
    session.receive_text(text("audioend", 2), 1.0)
    for _ in range(2):
        assert error_of(session.receive_bytes(b"\x01\x02", 2.0)) == (400, "ProcessError")
    assert session.phase is Phase.AUDIO_ENDED


def test_a_repeated_audioend_is_a_no_op():
    # SEPIA's web worker sends two when the microphone stops: no error, no second final.
    session = opened_session()
    [end] = session.receive_text(text("audioend", 2), 1.0)
    assert end == EndOfAudio(2)
    assert session.receive_text(text("audioend", 3), 2.0) == []
    assert session.phase is Phase.AUDIO_ENDED
    session.audio_ended(2, final("done"))
    assert session.receive_text(text("audioend", 4), 3.0) == []


def test_pong_after_welcome_sends_nothing():
    session = opened_session()
    assert session.receive_text(text("pong", 5), 1.0) == []


@pytest.mark.parametrize("kind", ["chat", "Welcome", "audioEnd", "ping"])
def test_an_unknown_message_type_is_400(kind):
    session = opened_session()
    assert error_of(session.receive_text(text(kind, 4, data={"text": "hi"}), 1.0)) == (
        400,
        "InvalidMessage",
    )
    assert session.phase is Phase.STREAMING


def after_welcome():
    return opened_session()


def after_audioend():
    session = opened_session()
    session.receive_text(text("audioend", 2), 1.0)
    return session


def test_a_welcome_with_nan_alternatives_is_400_and_may_be_retried():
    session = new_session()
    bad = '{"type": "welcome", "msg_id": 1, "data": {"alternatives": NaN}}'
    assert error_of(session.receive_text(bad, 1.0)) == (400, "InvalidMessage")
    assert session.phase is Phase.AWAITING_WELCOME


@pytest.mark.parametrize("make_session", [new_session, after_welcome, after_audioend])
@pytest.mark.parametrize(
    "bad", ["{not json", '{"type": "welcome"}', '{"type": "audioend", "msg_id": 1, "data": 1}']
)
def test_an_invalid_message_is_400_and_leaves_the_phase_unchanged(make_session, bad):
    session = make_session()
    phase = session.phase
    assert error_of(session.receive_text(bad, 1.0)) == (400, "InvalidMessage")
    assert session.phase is phase


# -- results -----------------------------------------------------------------------------------


def test_results_go_through_the_assembler():
    session = opened_session()
    actions = session.results([partial(""), partial("hel"), partial("hel"), partial("hello")])
    assert [m["transcript"] for m in messages(actions)] == ["", "hel", "hello"]
    assert all(m["type"] == "result" and m["isFinal"] is False for m in messages(actions))


def test_results_features_follow_the_effective_options():
    session = opened_session(effective={"words": True, "speaker": True}, continuous=True)
    word = Word("hi", 0.1, 0.3)
    [message] = messages(session.results([final("hi", 0.9, words=(word,), speaker_vector=(1.0,))]))
    assert message["features"] == {
        "words": [{"word": "hi", "start": 0.1, "end": 0.3}],
        "speaker_vector": [1.0],
    }


def test_effective_options_beat_the_requested_ones():
    # The client asked for words; the engine could not: no words in the results.
    session = opened_session(effective={"words": False}, words=True, continuous=True)
    [message] = messages(session.results([final("hi", words=(Word("hi", 0, 1),))]))
    assert message["features"] == {}


def test_server_msg_ids_come_from_the_shared_counter_in_sending_order():
    ids = MessageIds()
    first, second = new_session(), new_session()
    for session in (first, second):
        [request] = session.receive_text(welcome(), 0.0)
        session.recognizer_opened(request, INFO, {})
    a = messages(first.results([partial("a")]))[0]
    b = messages(second.results([partial("b")]))[0]
    c = messages(first.heartbeat(1.0))[0]
    assert [m["msg_id"] for m in (a, b, c)] == [UNSTAMPED] * 3
    # Sent in another order than made: the ids follow the sending.
    assert [protocol.stamp(m, ids)["msg_id"] for m in (c, b, a)] == [1, 2, 3]


def test_stamping_keeps_the_ids_that_echo_the_client():
    session = new_session()
    [request] = session.receive_text(welcome(42), 0.0)
    [ack] = messages(session.recognizer_opened(request, INFO, {}))
    assert protocol.stamp(ack, MessageIds())["msg_id"] == 42


def test_audio_ended_sends_the_response_then_exactly_one_final():
    session = opened_session()
    session.results([final("set a timer", 0.8), partial("for ten")])
    session.receive_text(text("audioend", 7), 1.0)
    actions = session.audio_ended(7, final("for ten minutes", 0.6))
    response, result = messages(actions)
    assert len(actions) == 2
    assert response == {"type": "response", "msg_id": 7, "code": 200, "response": "audioend"}
    assert result["type"] == "result"
    assert result["isFinal"] is True
    assert result["transcript"] == "set a timer for ten minutes"
    assert result["confidence"] == 0.6


def test_actions_say_what_they_are_errors_by_name_and_the_completing_final():
    session = opened_session(continuous=True)
    [utterance] = session.results([final("set a timer")])
    assert (utterance.error, utterance.completes) == (None, False)
    [error] = session.receive_text("{broken", 1.0)
    assert (error.error, error.completes) == ("InvalidMessage", False)
    session.receive_text(text("audioend", 3), 1.0)
    response, last = session.audio_ended(3, final("for ten minutes"))
    assert (response.completes, last.completes) == (False, True)


def test_audio_ended_sends_an_empty_final_when_nothing_was_heard():
    session = opened_session()
    session.receive_text(text("audioend", 3), 1.0)
    _response, result = messages(session.audio_ended(3, final("")))
    assert (result["transcript"], result["isFinal"]) == ("", True)


def test_a_whole_conversation_in_order():
    session = new_session(0.0)
    out: list = []
    [request] = session.receive_text(welcome(1, language="en-US"), 0.1)
    out += session.recognizer_opened(request, INFO, {})
    decodes = session.receive_bytes(WAV_HEADER + b"\x01\x02\x03", 0.2)
    decodes += session.receive_bytes(b"\x04\x05\x06", 0.3)
    assert decodes == [Decode(b"\x01\x02"), Decode(b"\x03\x04\x05\x06")]
    out += session.results([partial(""), partial("hello")])
    out += session.heartbeat(10.0)
    assert session.receive_text(text("pong", 3), 10.1) == []
    [end] = session.receive_text(text("audioend", 2, data={"byteLength": 50}), 11.0)
    assert end == EndOfAudio(2)
    out += session.audio_ended(end.msg_id, final("hello world", 0.9))
    ids = MessageIds()
    sent = [protocol.stamp(m, ids) for m in messages(out)]
    assert [(m["type"], m["msg_id"]) for m in sent] == [
        ("welcome", 1),
        ("result", 1),
        ("result", 2),
        ("ping", 3),
        ("response", 2),
        ("result", 4),
    ]
    assert [m.get("transcript") for m in sent if m["type"] == "result"] == [
        "",
        "hello",
        "hello world",
    ]
    assert not any(isinstance(action, Close) for action in out)


# -- heartbeat and inactivity ------------------------------------------------------------------


def test_heartbeat_pings_before_the_timeout():
    session = new_session(now=100.0)
    [ping] = messages(session.heartbeat(100.0 + TIMEOUT_S))
    assert (ping["type"], ping["code"]) == ("ping", 200)
    assert session.phase is Phase.AWAITING_WELCOME


def test_heartbeat_after_the_timeout_sends_408_and_closes_with_1013():
    session = new_session(now=100.0)
    actions = session.heartbeat(100.0 + TIMEOUT_S + 0.01)
    assert len(actions) == 2
    [error] = messages(actions)
    assert (error["type"], error["code"], error["name"]) == ("error", 408, "TimeoutMessage")
    assert actions[1] == Close(CLOSE_TRY_AGAIN_LATER, "TimeoutMessage")
    assert session.phase is Phase.CLOSED


def timed_out(session, last_activity) -> bool:
    actions = session.heartbeat(last_activity + TIMEOUT_S + 1)
    return any(isinstance(action, Close) for action in actions)


@pytest.mark.parametrize(
    "activity",
    [
        lambda s: s.receive_text(text("pong", 9), 50.0),
        lambda s: s.receive_text(text("audioend", 9), 50.0),
        lambda s: s.receive_bytes(b"\x01\x02", 50.0),
        lambda s: s.receive_bytes(b"\x01", 50.0),  # half a sample: nothing to decode, still alive
    ],
    ids=["pong", "audioend", "binary", "half-sample"],
)
def test_client_activity_resets_the_inactivity_timer(activity):
    idle, active = opened_session(now=0.0), opened_session(now=0.0)
    activity(active)
    # At 50 + timeout - 0.5 the idle session has timed out, the active one has not.
    assert timed_out(idle, 50.0 - 1.5)
    assert not timed_out(active, 50.0 - 1.5)


def test_the_welcome_counts_as_activity():
    session = new_session(now=0.0)
    session.receive_text(welcome(), 50.0)
    assert session.heartbeat(50.0 + TIMEOUT_S)[0].message["type"] == "ping"


@pytest.mark.parametrize(
    "invalid", ["{broken", text("audioend", 1, data=[1]), '{"type": "pong", "msg_id": "x"}']
)
def test_invalid_messages_do_not_count_as_activity(invalid):
    session = opened_session(now=0.0)
    session.receive_text(invalid, 10.0)
    assert timed_out(session, 0.0)


def test_heartbeat_pings_get_fresh_ids_when_sent():
    session, ids = new_session(), MessageIds()
    pings = [messages(session.heartbeat(t))[0] for t in (1.0, 2.0, 3.0)]
    assert [protocol.stamp(ping, ids)["msg_id"] for ping in pings] == [1, 2, 3]


# -- fail and closing --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "code", "name", "close_code"),
    [
        (AuthenticationFailed("wrong token"), 401, "Unauthorized", CLOSE_NORMAL),
        (ChunkProcessorError("failed to create"), 500, "ChunkProcessorError", CLOSE_NORMAL),
        (ModelNotFound("no model for xx"), 500, "ChunkProcessorError", CLOSE_NORMAL),
        (EngineNotFound("no engine"), 500, "ChunkProcessorError", CLOSE_NORMAL),
        (AsrEngineError("decoder died"), 500, "AsrEngineError", CLOSE_INTERNAL_ERROR),
        (InternalError("bug"), 500, "Error", CLOSE_INTERNAL_ERROR),
        (TimeoutMessage("idle"), 408, "TimeoutMessage", CLOSE_TRY_AGAIN_LATER),
    ],
)
def test_closing_errors_send_the_error_then_close(error, code, name, close_code):
    session = opened_session()
    actions = session.fail(error)
    assert len(actions) == 2
    [message] = messages(actions)
    assert message == {
        "type": "error",
        "msg_id": message["msg_id"],
        "code": code,
        "name": name,
        "message": error.message,
    }
    assert actions[1] == Close(close_code, name)
    assert session.phase is Phase.CLOSED


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (Unauthorized("not yet"), 401),
        (InvalidMessage("bad"), 400),
        (NotPossible("twice"), 418),
        (ProcessError("ended"), 400),
    ],
)
def test_non_closing_errors_keep_the_session(error, code):
    session = opened_session()
    assert only_error(session.fail(error))["code"] == code
    assert session.phase is Phase.STREAMING


def closed_session() -> SessionProtocol:
    session = opened_session()
    session.fail(AuthenticationFailed("wrong token"))
    assert session.phase is Phase.CLOSED
    return session


@pytest.mark.parametrize(
    "event",
    [
        lambda s: s.receive_text(welcome(2), 5.0),
        lambda s: s.receive_text(text("audioend", 2), 5.0),
        lambda s: s.receive_text("{broken", 5.0),
        lambda s: s.receive_bytes(b"\x01\x02", 5.0),
        lambda s: s.heartbeat(1000.0),
        pytest.param(lambda s: s.fail(InternalError("late"))),
        pytest.param(lambda s: s.results([partial("late")])),
        pytest.param(lambda s: s.audio_ended(2, final("late"))),
    ],
    ids=["welcome", "audioend", "invalid", "binary", "heartbeat", "fail", "results", "ended"],
)
def test_after_closed_nothing_more_is_emitted(event):
    session = closed_session()
    assert event(session) == []
    assert session.phase is Phase.CLOSED


def test_a_session_that_never_sends_a_valid_welcome_times_out():
    session = new_session(now=0.0)
    assert session.receive_text("{broken", 5.0)  # an error, and no activity
    actions = session.heartbeat(TIMEOUT_S + 0.5)
    assert actions[-1] == Close(CLOSE_TRY_AGAIN_LATER, "TimeoutMessage")
    assert session.phase is Phase.CLOSED


def test_a_recognizer_opened_after_the_session_closed_sends_no_ack():
    session = new_session(now=0.0)
    [request] = session.receive_text(welcome(), 0.0)
    session.heartbeat(TIMEOUT_S + 1)  # times out while the recognizer is being opened
    assert session.phase is Phase.CLOSED
    assert session.recognizer_opened(request, INFO, {}) == []


def test_session_applies_optimize_final_result_with_the_models_language():
    session = opened_session(optimizeFinalResult=True, continuous=True)
    sent = messages(session.results([partial("one two three"), final("one two three")]))
    assert [(m["transcript"], m["isFinal"]) for m in sent] == [
        ("one two three", False),
        ("1 2 3", True),
    ]


def _wav_header(rate: int, channels: int = 1, bits: int = 16) -> bytes:
    block = channels * bits // 8
    return (
        b"RIFF" + struct.pack("<I", 36) + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * block, block, bits)
        + b"data" + struct.pack("<I", 0)
    )  # fmt: skip


@pytest.mark.parametrize(
    ("header", "complaint"),
    [
        (_wav_header(8000), "8000 Hz"),
        (_wav_header(16000, channels=2), "2 channel(s)"),
        (_wav_header(16000, bits=8), "8-bit"),
    ],
)
def test_a_wav_header_that_does_not_fit_the_session_is_reported_once(header, complaint):
    session = SessionProtocol(timeout_s=10, now=0.0)
    session.receive_text(json.dumps({"type": "welcome", "msg_id": 1, "data": {}}), 0.0)
    actions = session.receive_bytes(header + b"\0\0" * 10, 0.1)
    [error] = [a.message for a in actions if isinstance(a, Send)]
    assert (error["code"], error["name"]) == (400, "InvalidMessage")
    assert complaint in error["message"]
    # The audio still goes to the engine, and the complaint is not repeated.
    assert [a for a in actions if isinstance(a, Decode)] == [Decode(b"\0\0" * 10)]
    assert session.receive_bytes(b"\0\0", 0.2) == [Decode(b"\0\0")]


def test_a_wav_header_that_fits_is_skipped_quietly():
    session = SessionProtocol(timeout_s=10, now=0.0)
    session.receive_text(json.dumps({"type": "welcome", "msg_id": 1, "data": {}}), 0.0)
    assert session.receive_bytes(_wav_header(16000) + b"\1\2", 0.1) == [Decode(b"\1\2")]
