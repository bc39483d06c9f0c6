"""Who gets a place on the server, and who is refused before costing anything.

A connection holds one of two kinds of place:

* *pending*: it has not authenticated yet.  Pending places are bounded per
  client address and in total, apart from sessions, so connections that never
  authenticate cannot take the places of users who do.
* *session*: it authenticated.  ``max_sessions`` in total; per client id for
  per-user tokens (an identity the server can trust), per client address for
  the common token (any client may call itself ``any``).

New connections from one address are also rate limited (a token bucket), so a
reconnect loop costs the server one refusal, not one handshake and task each.
Plain bookkeeping with the time passed in, so each rule is testable without a
socket.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from stt.errors import ServerBusy
from stt.server.addresses import limit_key
from stt.settings import ServerSettings

#: Addresses whose connection rate is tracked before idle ones (full buckets) are forgotten.
TRACKED_ADDRESSES = 10_000


class Refused(ServerBusy):
    """``ServerBusy`` with the limit that caused it, for ``/metrics``."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a welcome proved to be."""

    client_id: str
    #: Proved by the client id's own token; the common token proves no id.
    per_user: bool


#: Who a connection is on a front door without authentication: counted per address.
ANONYMOUS = Identity("", per_user=False)


@dataclass(eq=False, slots=True)
class Place:
    """One connection's place: pending until it authenticates, then a session's."""

    address: str
    #: What per-address limits count it as (``addresses.limit_key``: the /64 for IPv6).
    address_key: str
    #: What its session counts against: ``user:<id>`` or ``address:<key>``; None while pending.
    session_key: str | None = None
    released: bool = False


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


@dataclass(slots=True)
class Admission:
    limits: ServerSettings
    pending: int = 0
    sessions: int = 0
    _pending_by_address: Counter[str] = field(default_factory=Counter)
    _sessions_by_key: Counter[str] = field(default_factory=Counter)
    _buckets: dict[str, _Bucket] = field(default_factory=dict)

    @property
    def has_room(self) -> bool:
        """Whether one more authenticated session fits (what ``/ready`` reports)."""
        return self.sessions < self.limits.max_sessions

    def open(self, address: str, now: float) -> Place:
        """A pending place for a new connection, or ``Refused``."""
        limits = self.limits
        key = limit_key(address)
        if not self._take_token(key, now):
            raise Refused("rate", "Too many new connections from this address. Try again later.")
        if self._pending_by_address[key] >= limits.max_pending_per_address:
            raise Refused(
                "pending_per_address",
                "Too many connections from this address are waiting to authenticate.",
            )
        if self.pending >= limits.max_pending:
            raise Refused(
                "pending", "Too many connections are waiting to authenticate. Try again later."
            )
        self.pending += 1
        self._pending_by_address[key] += 1
        return Place(address, key)

    def authenticate(self, place: Place, identity: Identity) -> None:
        """Turn a pending place into a session's, or ``Refused`` (the place stays pending)."""
        assert place.session_key is None and not place.released, "place is not pending"
        limits = self.limits
        if self.sessions >= limits.max_sessions:
            raise Refused("sessions", f"Server is at its limit of {limits.max_sessions} sessions.")
        if identity.per_user:
            session_key, limit = f"user:{identity.client_id}", limits.max_sessions_per_user
            if self._sessions_by_key[session_key] >= limit:
                raise Refused(
                    "per_user", f"Client {identity.client_id!r} already has {limit} sessions open."
                )
        else:
            session_key = f"address:{place.address_key}"
            limit = limits.max_sessions_per_address
            if self._sessions_by_key[session_key] >= limit:
                raise Refused("per_address", f"This address already has {limit} sessions open.")
        self._unpend(place)
        place.session_key = session_key
        self.sessions += 1
        self._sessions_by_key[session_key] += 1

    def release(self, place: Place) -> None:
        """The connection has ended for its client; calling it again does nothing."""
        if place.released:
            return
        place.released = True
        if place.session_key is None:
            self._unpend(place)
            return
        self.sessions -= 1
        self._sessions_by_key[place.session_key] -= 1
        if not self._sessions_by_key[place.session_key]:
            del self._sessions_by_key[place.session_key]

    def _unpend(self, place: Place) -> None:
        key = place.address_key
        self.pending -= 1
        self._pending_by_address[key] -= 1
        if not self._pending_by_address[key]:
            del self._pending_by_address[key]

    def _take_token(self, key: str, now: float) -> bool:
        rate, burst = self.limits.connection_rate, self.limits.connection_burst
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= TRACKED_ADDRESSES:
                self._forget_idle(now)
            bucket = self._buckets[key] = _Bucket(float(burst), now)
        bucket.tokens = min(float(burst), bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        if bucket.tokens < 1:
            return False
        bucket.tokens -= 1
        return True

    def _forget_idle(self, now: float) -> None:
        """Drop buckets that have refilled: they hold nothing a new one would not."""
        rate, burst = self.limits.connection_rate, self.limits.connection_burst
        for key, bucket in list(self._buckets.items()):
            if bucket.tokens + (now - bucket.updated) * rate >= burst:
                del self._buckets[key]
