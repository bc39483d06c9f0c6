"""vosk-server's session rules without a socket: config, one reply per message, eof, reset."""

from __future__ import annotations

import pytest

from stt.actions import Close, Decode, EndOfAudio, OpenRecognizer, Send
from stt.engines.base import Alternative, Hypothesis, Word
from stt.errors import AuthenticationFailed
from stt.vosk_server.session import EOF_ID, RESET_ID, VoskConfig, VoskSession

PCM = b"\x01\x00" * 1600


def new_session(credentials=("alice", "secret"), **config) -> VoskSession:
    return VoskSession(
        config=VoskConfig(**config), credentials=credentials, timeout_s=15.0, now=0.0
    )


def sent(actions) -> list[dict]:
    return [a.message for a in actions if isinstance(a, Send)]


def test_the_first_audio_opens_a_recognizer_with_vosk_servers_defaults():
    session = new_session()
    opened, decode = session.receive_bytes(PCM, 1.0)
    assert isinstance(opened, OpenRecognizer) and isinstance(decode, Decode)
    assert (opened.client_id, opened.access_token, opened.anonymous) == ("alice", "secret", False)
    recognition = opened.options.recognition
    assert (recognition.sample_rate, recognition.words, recognition.alternatives) == (8000, True, 0)
    assert session.receive_bytes(PCM, 1.1) == [Decode(PCM)]


def test_config_sets_the_options_and_gets_no_reply():
    session = new_session()
    config = '{"config": {"sample_rate": 16000, "words": false, "max_alternatives": 2, '
    config += '"phrase_list": ["one", "two"], "model": "m"}}'
    assert session.receive_text(config, 0.5) == []
    [opened, _] = session.receive_bytes(PCM, 1.0)
    options = opened.options
    assert options.model == "m"
    assert options.recognition.sample_rate == 16000
    assert options.recognition.phrases == ("one", "two")
    assert (options.recognition.words, options.recognition.alternatives) == (False, 2)


def test_without_credentials_the_session_is_anonymous():
    [opened, _] = new_session(credentials=None).receive_bytes(PCM, 1.0)
    assert opened.anonymous and opened.client_id is None


@pytest.mark.parametrize(
    "config",
    ['{"config": {"sample_rate": 5}}', '{"config": {"max_alternatives": "3"}}', '{"config": 7}'],
)
def test_a_bad_config_is_an_error_and_a_close(config):
    session = new_session()
    actions = session.receive_text(config, 0.5)
    assert "error" in sent(actions)[0]
    assert isinstance(actions[-1], Close) and actions[-1].code == 1008
    assert session.closed and session.receive_bytes(PCM, 1.0) == []


def test_each_decoded_message_gets_one_reply():
    session = new_session()
    session.receive_bytes(PCM, 1.0)
    partial = Hypothesis("hello wor", is_final=False)
    assert sent(session.results([partial], frames=3)) == [{"partial": "hello wor"}] * 3
    assert sent(session.results([], frames=1)) == [{"partial": "hello wor"}]


def test_a_final_is_the_reply_of_its_message_and_resets_the_partial():
    session = new_session()
    session.receive_bytes(PCM, 1.0)
    words = (Word("hello", 0.0, 0.4, 0.9), Word("world", 0.5, 0.9, None))
    final = Hypothesis("hello world", is_final=True, confidence=0.8, words=words)
    replies = sent(session.results([final, Hypothesis("and", is_final=False)], frames=2))
    assert replies[0] == {
        "result": [
            {"conf": 0.9, "end": 0.4, "start": 0.0, "word": "hello"},
            {"conf": 1.0, "end": 0.9, "start": 0.5, "word": "world"},
        ],
        "text": "hello world",
    }
    assert replies[1] == {"partial": "and"}


def test_n_best_replies_in_vosks_alternatives_shape():
    session = new_session(max_alternatives=2, words=False)
    session.receive_bytes(PCM, 1.0)
    final = Hypothesis(
        "a b", is_final=True, confidence=12.0, alternatives=(Alternative("a c", 10.0),)
    )
    [reply] = sent(session.results([final]))
    assert reply == {
        "alternatives": [{"confidence": 12.0, "text": "a b"}, {"confidence": 10.0, "text": "a c"}]
    }


def test_eof_gives_the_last_final_and_closes_normally():
    session = new_session()
    session.receive_bytes(PCM, 1.0)
    assert session.receive_text('{"eof" : 1}', 2.0) == [EndOfAudio(EOF_ID)]
    assert session.receive_bytes(PCM, 2.1) == [], "nothing after eof"
    final, close = session.audio_ended(EOF_ID, Hypothesis("bye", is_final=True))
    assert isinstance(final, Send) and final.completes and final.message == {"text": "bye"}
    assert close == Close(1000, "eof")


def test_eof_before_any_audio_still_opens_a_recognizer_for_the_empty_final():
    opened, end = new_session().receive_text('{"eof": 1}', 1.0)
    assert isinstance(opened, OpenRecognizer) and end == EndOfAudio(EOF_ID)


def test_reset_gives_the_final_so_far_and_the_session_goes_on():
    session = new_session()
    session.receive_bytes(PCM, 1.0)
    assert session.receive_text('{"reset" : 1}', 2.0) == [EndOfAudio(RESET_ID, ends_session=False)]
    [final] = session.audio_ended(RESET_ID, Hypothesis("so far", is_final=True))
    assert final.message == {"text": "so far"} and not final.completes
    assert session.receive_bytes(PCM, 2.1) == [Decode(PCM)]


def test_a_split_sample_still_gets_its_reply():
    session = new_session()
    session.receive_bytes(PCM, 1.0)
    assert sent(session.receive_bytes(b"\x01", 1.1)) == [{"partial": ""}]
    assert session.receive_bytes(b"\x00" + PCM[:2], 1.2) == [Decode(b"\x01\x00\x01\x00")]


def test_failed_authentication_is_an_error_reply_and_a_close():
    session = new_session()
    session.receive_bytes(PCM, 1.0)
    error, close = session.fail(AuthenticationFailed("Authentication failed: wrong token."))
    assert error.message == {"error": "Authentication failed: wrong token."}
    assert close.code == 1008


def test_idle_sessions_expire_and_no_pings_are_sent():
    session = new_session()
    assert session.heartbeat(10.0) == []
    error, close = session.heartbeat(16.0)
    assert "inactive" in error.message["error"] and close.code == 1013


def test_a_drain_lets_the_stream_reach_eof_then_goes_away():
    session = new_session()
    session.receive_bytes(PCM, 1.0)
    assert session.drain() == []
    session.receive_text('{"eof" : 1}', 2.0)
    _, close = session.audio_ended(EOF_ID, Hypothesis("", is_final=True))
    assert close.code == 1001
