"""Authenticator: common and per-user tokens, plain and hashed."""

from __future__ import annotations

import pytest

from stt.server.auth import Authenticator
from stt.settings import AuthSettings

# -- Authenticator -----------------------------------------------------------------------------

USERS = {"alice": "alice-token", "bob": "bob-token"}


COMMON, OWN = "common", "own"


def proved_by(identity) -> str | None:
    """Which token an identity was proved with."""
    if identity is None:
        return None
    return OWN if identity.per_user else COMMON


@pytest.mark.parametrize(
    ("client_id", "token", "proof"),
    [
        ("any", "test1234", COMMON),
        (None, "test1234", COMMON),
        ("alice", "test1234", COMMON),
        ("alice", "alice-token", OWN),
        ("bob", "bob-token", OWN),
        ("bob", "alice-token", None),
        ("carol", "alice-token", None),
        (None, "alice-token", None),
        ("alice", "wrong", None),
        ("alice", "", None),
        ("alice", None, None),
        ("any", None, None),
        ("any", "test12345", None),
        ("any", "TEST1234", None),
    ],
)
def test_common_and_user_tokens(client_id, token, proof):
    auth = Authenticator(AuthSettings(common_token="test1234", user_tokens=USERS))
    identity = auth.check(client_id, token)
    assert proved_by(identity) == proof
    # Asked again (now from the cache of verified tokens): the same answer.
    assert auth.check(client_id, token) == identity
    if identity is not None:
        assert identity.client_id == (client_id or "")


@pytest.mark.parametrize(
    ("client_id", "token", "proof"),
    [
        ("alice", "alice-token", OWN),
        ("any", "test1234", None),
        ("any", "", None),
        ("any", "\0", None),
        ("alice", None, None),
    ],
)
def test_a_disabled_common_token_allows_user_tokens_only(client_id, token, proof):
    auth = Authenticator(AuthSettings(common_token=None, user_tokens=USERS))
    assert proved_by(auth.check(client_id, token)) == proof


def test_non_ascii_tokens_compare_fine():
    auth = Authenticator(AuthSettings(common_token=None, user_tokens={"jürgen": "schlüssel"}))
    assert proved_by(auth.check("jürgen", "schlüssel")) == OWN
    assert auth.check("jürgen", "schlussel") is None
