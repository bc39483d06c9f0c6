"""The limits every protocol's session keeps, without I/O: time and refused messages.

A session (SEPIA's, vosk-server's, Wyoming's) is told the time by its caller; these
rules say when it has run out of it (idle too long, no first message in time, too
long in all) and when a client that keeps sending what must be refused is cut off.
One place for them, so every front door ends sessions for the same reasons and with
the same words.
"""

from __future__ import annotations

import math

from stt.errors import SttError, TimeoutMessage, TooManyErrors

#: Refused messages a session takes before it is closed (a broken or hostile client).
MAX_ERRORS = 50
#: Before the session has started (no welcome yet), far fewer: a stranger gets little.
MAX_ERRORS_BEFORE_START = 5


class SessionLimits:
    """Deadlines and the refused-message count of one session."""

    def __init__(
        self,
        now: float,
        *,
        timeout_s: float,
        start_timeout_s: float = math.inf,
        max_session_s: float = math.inf,
    ) -> None:
        self._timeout_s = timeout_s
        self._start_deadline = now + start_timeout_s
        self._end_deadline = now + max_session_s
        self._last_activity = now
        self._errors = 0

    def touch(self, now: float) -> None:
        """The client did something that counts as activity."""
        self._last_activity = now

    def expired(self, now: float, *, started: bool) -> SttError | None:
        """Why the session has run out of time at ``now``, if it has."""
        if now - self._last_activity > self._timeout_s:
            return TimeoutMessage("Client was inactive for too long.")
        if not started and now > self._start_deadline:
            return TimeoutMessage("No 'welcome' message in time after connecting.")
        if now > self._end_deadline:
            return TimeoutMessage("Session reached its maximum duration.")
        return None

    def refused(self, error: SttError, *, started: bool = True) -> SttError:
        """Count an error sent to the client; past the limit it becomes ``TooManyErrors``."""
        self._errors += 1
        limit = MAX_ERRORS if started else MAX_ERRORS_BEFORE_START
        if self._errors > limit and not error.closes_session:
            return TooManyErrors(f"{limit} refused messages: closing. Last: {error.message}")
        return error
