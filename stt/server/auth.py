"""Who may open a session: the common token and per-user tokens, plain or hashed.

Tokens in the settings file may be stored as salted PBKDF2 hashes
(``pbkdf2_sha256$<iterations>$<salt>$<hash>``, made by ``sepia-stt token``), so a
leaked settings file does not leak tokens.  Every comparison is constant-time,
and failed attempts are throttled per client address.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field

from stt.server.admission import Identity
from stt.settings import AuthSettings

#: (client id, token) as a request brings them; either may be missing.
Credentials = tuple[str | None, str | None]

HASH_SCHEME = "pbkdf2_sha256"
HASH_ITERATIONS = 200_000
#: Verified (client id, token) digests kept so a hashed token costs one KDF run, not one a session.
VERIFIED_CACHE_SIZE = 1024
#: Addresses with failures the throttle remembers before it forgets those whose window has passed.
THROTTLED_ADDRESSES = 10_000


def hash_token(token: str, *, iterations: int = HASH_ITERATIONS) -> str:
    """The settings-file form of a token."""
    salt = secrets.token_hex(16)
    digest = _pbkdf2(token, salt, iterations)
    return f"{HASH_SCHEME}${iterations}${salt}${digest}"


def new_token() -> str:
    return secrets.token_urlsafe(32)


def is_hashed(stored: str) -> bool:
    return stored.startswith(HASH_SCHEME + "$")


def token_matches(token: str, stored: str) -> bool:
    """Constant-time check of a token against its stored (plain or hashed) form."""
    if not is_hashed(stored):
        return hmac.compare_digest(token.encode("utf-8"), stored.encode("utf-8"))
    try:
        _scheme, iterations, salt, digest = stored.split("$")
        expected = _pbkdf2(token, salt, int(iterations))
    except ValueError:
        return False
    return hmac.compare_digest(expected, digest)


def _pbkdf2(token: str, salt: str, iterations: int) -> str:
    return hashlib.pbkdf2_hmac("sha256", token.encode("utf-8"), salt.encode(), iterations).hex()


class Authenticator:
    """Checks welcome credentials (blocking when tokens are hashed: call it in a thread)."""

    def __init__(self, settings: AuthSettings) -> None:
        self._common = settings.common_token
        self._users = dict(settings.user_tokens)
        #: Digest of (client id, token) -> the identity it proved.
        self._verified: OrderedDict[bytes, Identity] = OrderedDict()
        self._verified_lock = threading.Lock()

    def check(self, client_id: str | None, token: str | None) -> Identity | None:
        """Who the token proves the client to be: its own token, or the common one; else None."""
        if not token:
            return None
        if client_id is None and ":" in token:
            # A bearer token "NAME:TOKEN" (OpenAI's SDKs have only an API key) names its user.
            name, _, rest = token.partition(":")
            if name in self._users:
                client_id, token = name, rest
        key = hashlib.sha256(f"{client_id}\0{token}".encode()).digest()
        with self._verified_lock:
            if key in self._verified:
                self._verified.move_to_end(key)
                return self._verified[key]
        stored = self._users.get(client_id or "")
        # Both checks run every time.  With plain tokens that hides whether a user exists;
        # with hashed ones a known user costs a key derivation more than an unknown one.
        user_ok = token_matches(token, stored) if stored else _burn(token)
        common_ok = token_matches(token, self._common) if self._common else _burn(token)
        if not (user_ok or common_ok):
            return None
        identity = Identity(client_id or "", per_user=user_ok)
        with self._verified_lock:
            self._verified[key] = identity
            if len(self._verified) > VERIFIED_CACHE_SIZE:
                self._verified.popitem(last=False)
        return identity


def _burn(token: str) -> bool:
    """A comparison that always fails and takes as long as a plain one."""
    hmac.compare_digest(token.encode("utf-8"), b"\0" + token.encode("utf-8"))
    return False


@dataclass
class AuthThrottle:
    """Rising delays after failed attempts from one address, then a refusal.

    Plain bookkeeping with the time passed in, so the policy is testable without waiting.
    """

    base_delay_s: float
    max_delay_s: float = 10.0
    #: Failures within ``window_s`` after which the address is refused outright.
    max_failures: int = 10
    window_s: float = 600.0
    _failures: dict[str, list[float]] = field(default_factory=dict)

    def delay_after_failure(self, address: str, now: float) -> float:
        """Record a failure; how long to wait before answering it."""
        failures = self._recent(address, now)
        failures.append(now)
        if address not in self._failures and len(self._failures) >= THROTTLED_ADDRESSES:
            self._forget_expired(now)
        self._failures[address] = failures
        return min(self.max_delay_s, self.base_delay_s * 2 ** (len(failures) - 1))

    def is_refused(self, address: str, now: float) -> bool:
        return len(self._recent(address, now)) >= self.max_failures

    def _forget_expired(self, now: float) -> None:
        for address, failures in list(self._failures.items()):
            if now - failures[-1] >= self.window_s:
                del self._failures[address]

    def _recent(self, address: str, now: float) -> list[float]:
        """The address's failures within the window (older ones are forgotten)."""
        failures = [t for t in self._failures.get(address, ()) if now - t < self.window_s]
        if failures:
            self._failures[address] = failures
        else:
            self._failures.pop(address, None)
        return failures


def request_credentials(headers: Mapping[str, str], query: Mapping[str, str]) -> Credentials:
    """(client id, token) from an HTTP request or WebSocket upgrade (header names in lower
    case): ``?token=T&user=NAME``, ``Authorization: Bearer T`` (``NAME:T`` for a user's own
    token) or ``Basic base64(NAME:T)``; (None, None) when it brings none."""
    token = query.get("token", "")
    if token:
        return query.get("user", "") or None, token
    scheme, _, value = headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return None, value.strip()
    if scheme.lower() == "basic":
        try:
            user, _, token = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None, None
        return user or None, token or None
    return None, None
