"""The limits every session keeps, with the time passed in."""

from __future__ import annotations

from stt.errors import InvalidMessage, ProcessError, TimeoutMessage, TooManyErrors
from stt.limits import MAX_ERRORS, MAX_ERRORS_BEFORE_START, SessionLimits


def test_idle_first_message_and_total_deadlines():
    limits = SessionLimits(100.0, timeout_s=10, start_timeout_s=5, max_session_s=60)
    assert limits.expired(104.9, started=False) is None
    assert "welcome" in limits.expired(105.1, started=False).message
    assert limits.expired(105.1, started=True) is None  # a started session has no such deadline
    limits.touch(109.0)
    assert limits.expired(118.9, started=True) is None
    idle = limits.expired(119.1, started=True)
    assert isinstance(idle, TimeoutMessage) and "inactive" in idle.message
    for now in range(110, 161, 9):
        limits.touch(float(now))
    assert "maximum duration" in limits.expired(160.5, started=True).message


def test_refused_messages_turn_into_too_many_errors():
    limits = SessionLimits(0.0, timeout_s=10)
    for _ in range(MAX_ERRORS_BEFORE_START):
        assert isinstance(limits.refused(InvalidMessage("x"), started=False), InvalidMessage)
    assert isinstance(limits.refused(InvalidMessage("x"), started=False), TooManyErrors)
    started = SessionLimits(0.0, timeout_s=10)
    for _ in range(MAX_ERRORS):
        started.refused(ProcessError("x"))
    last = started.refused(ProcessError("late audio"))
    assert isinstance(last, TooManyErrors) and "late audio" in last.message
