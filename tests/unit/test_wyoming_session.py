"""Wyoming's session rules without a socket: events in, actions out."""

from __future__ import annotations

import json

from wyoming.asr import Transcribe
from wyoming.audio import AudioStart, AudioStop
from wyoming.info import Describe, Info

from stt.actions import Close, Decode, EndOfAudio, OpenRecognizer, Send
from stt.engines.base import Hypothesis
from stt.wyoming.session import WyomingSession

PCM = b"\x01\x00" * 512


def text(event) -> str:
    return json.dumps({"type": event.type, "data": event.data})


def new_session() -> WyomingSession:
    return WyomingSession(info=Info(), timeout_s=15.0, now=0.0)


def kinds(actions) -> list[str]:
    return [a.message["type"] if isinstance(a, Send) else type(a).__name__ for a in actions]


def started(session: WyomingSession) -> list:
    session.receive_text(text(Transcribe(name="m", language="en").event()), 0.1)
    return session.receive_text(text(AudioStart(rate=16000, width=2, channels=1).event()), 0.2)


def test_describe_is_answered_with_info_at_any_time():
    session = new_session()
    [info] = session.receive_text(text(Describe().event()), 0.0)
    assert info.message["type"] == "info"


def test_audio_start_opens_an_anonymous_recognizer_with_the_transcribe_options():
    session = new_session()
    opened, start = started(session)
    assert isinstance(opened, OpenRecognizer) and opened.anonymous
    assert (opened.options.model, opened.options.language) == ("m", "en")
    assert opened.options.recognition.sample_rate == 16000
    assert start.message["type"] == "transcript-start"
    assert session.receive_bytes(PCM, 0.3) == [Decode(PCM)]


def test_finals_stream_as_appended_chunks_that_join_to_the_transcript():
    session = new_session()
    started(session)
    chunks = session.results([Hypothesis("one", is_final=True), Hypothesis("tw", is_final=False)])
    assert [a.message["data"]["text"] for a in chunks] == ["one"]
    end = session.receive_text(text(AudioStop().event()), 1.0)
    assert end == [EndOfAudio(ends_session=False)]
    actions = session.audio_ended(0, Hypothesis("two", is_final=True))
    assert kinds(actions) == ["transcript-chunk", "transcript", "transcript-stop"]
    assert actions[0].message["data"]["text"] == " two"
    assert actions[1].message["data"]["text"] == "one two" and actions[1].completes


def test_a_second_utterance_with_the_same_options_reuses_the_recognizer():
    session = new_session()
    started(session)
    session.receive_text(text(AudioStop().event()), 1.0)
    session.audio_ended(0, Hypothesis("", is_final=True))
    assert kinds(started(session)) == ["transcript-start"]


def test_bad_audio_formats_and_stray_events_are_error_events():
    session = new_session()
    [error] = session.receive_text(text(AudioStart(rate=16000, width=4, channels=2).event()), 0.1)
    assert error.message["type"] == "error" and "16-bit mono" in error.message["data"]["text"]
    [error] = session.receive_bytes(PCM, 0.2)
    assert "audio-chunk" in error.message["data"]["text"]
    [error] = session.receive_text(text(AudioStop().event()), 0.3)
    assert error.message["data"]["code"] == "ProcessError"
    assert not session.closed


def test_idle_connections_are_closed_after_the_timeout():
    session = new_session()
    assert session.heartbeat(10.0) == []
    error, close = session.heartbeat(16.0)
    assert error.message["data"]["code"] == "TimeoutMessage" and isinstance(close, Close)


def test_a_drain_waits_for_the_open_utterance():
    session = new_session()
    started(session)
    assert session.drain() == []
    session.receive_text(text(AudioStop().event()), 1.0)
    actions = session.audio_ended(0, Hypothesis("bye", is_final=True))
    assert isinstance(actions[-1], Close) and actions[-1].code == 1001
