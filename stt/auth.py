"""Who may open a session: the common token and per-user tokens."""

from __future__ import annotations

import hmac

from stt.settings import AuthSettings


class Authenticator:
    def __init__(self, settings: AuthSettings) -> None:
        self._common = settings.common_token
        self._users = dict(settings.user_tokens)

    def check(self, client_id: str | None, token: str | None) -> bool:
        """True when the token is the user's own or the common one (constant time)."""
        if not token:
            return False
        user_token = self._users.get(client_id or "")
        # Compare against both every time, so timing says nothing about which exists.
        user_ok = _same(token, user_token or "\0" + token)
        common_ok = _same(token, self._common or "\0" + token)
        return user_ok or common_ok


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))
