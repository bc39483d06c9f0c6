"""Admission, client addresses and the auth throttle, without a socket: who gets in, and why not."""

from __future__ import annotations

import ipaddress
from dataclasses import replace

import pytest

from stt.server.addresses import client_address, limit_key, parse_address
from stt.server.admission import TRACKED_ADDRESSES, Admission, Identity, Refused
from stt.server.auth import THROTTLED_ADDRESSES, AuthThrottle
from stt.settings import ServerSettings

LIMITS = ServerSettings(
    max_sessions=4,
    max_sessions_per_user=2,
    max_sessions_per_address=3,
    max_pending=5,
    max_pending_per_address=2,
    connection_rate=10.0,
    connection_burst=1000,
)
COMMON = Identity("any", per_user=False)


def alice() -> Identity:
    return Identity("alice", per_user=True)


def refusal(call) -> str:
    with pytest.raises(Refused) as refused:
        call()
    assert refused.value.code == 503 and refused.value.name == "ServerBusy"
    return refused.value.reason


def test_pending_connections_are_capped_per_address_and_in_total():
    admission = Admission(LIMITS)
    admission.open("10.0.0.1", 0.0)
    admission.open("10.0.0.1", 0.0)
    assert refusal(lambda: admission.open("10.0.0.1", 0.0)) == "pending_per_address"
    for host in ("10.0.0.2", "10.0.0.3", "10.0.0.3"):
        admission.open(host, 0.0)
    assert admission.pending == 5
    assert refusal(lambda: admission.open("10.0.0.4", 0.0)) == "pending"


def test_pending_connections_never_take_a_sessions_place():
    admission = Admission(replace(LIMITS, max_pending=3, max_pending_per_address=3))
    user = admission.open("10.0.0.1", 0.0)
    for _ in range(2):
        admission.open("10.0.0.66", 0.0)
    assert refusal(lambda: admission.open("10.0.0.66", 0.0)) == "pending"
    # Every pending place is taken, and yet the user who authenticates gets a session.
    assert admission.has_room
    admission.authenticate(user, alice())
    assert (admission.pending, admission.sessions) == (2, 1)


def test_authenticating_moves_the_place_from_pending_to_sessions():
    admission = Admission(LIMITS)
    place = admission.open("10.0.0.1", 0.0)
    admission.authenticate(place, alice())
    assert (admission.pending, admission.sessions) == (0, 1)
    # The address may open pending connections again: the session does not count there.
    admission.open("10.0.0.1", 0.0)
    admission.open("10.0.0.1", 0.0)


def test_sessions_are_capped_in_total():
    admission = Admission(replace(LIMITS, max_sessions_per_address=10))
    for n in range(4):
        admission.authenticate(admission.open(f"10.0.0.{n}", 0.0), COMMON)
    assert not admission.has_room
    place = admission.open("10.0.0.9", 0.0)
    assert refusal(lambda: admission.authenticate(place, alice())) == "sessions"
    assert admission.pending == 1  # still pending: the connection is told, then closed


def test_per_user_tokens_are_capped_per_client_id_from_any_address():
    admission = Admission(LIMITS)
    admission.authenticate(admission.open("10.0.0.1", 0.0), alice())
    admission.authenticate(admission.open("10.0.0.2", 0.0), alice())
    place = admission.open("10.0.0.3", 0.0)
    assert refusal(lambda: admission.authenticate(place, alice())) == "per_user"
    # Another user is not affected.
    admission.authenticate(place, Identity("bob", per_user=True))


def test_common_token_sessions_are_capped_per_address_whatever_id_they_claim():
    admission = Admission(LIMITS)
    for client_id in ("any", "alice", "bob"):
        admission.authenticate(admission.open("10.0.0.1", 0.0), Identity(client_id, False))
    place = admission.open("10.0.0.1", 0.0)
    assert refusal(lambda: admission.authenticate(place, Identity("carol", False))) == (
        "per_address"
    )
    # Per-user tokens from the same address count for their user instead.
    admission.authenticate(place, alice())


def test_release_frees_the_place_at_once_and_only_once():
    admission = Admission(replace(LIMITS, max_sessions=1))
    place = admission.open("10.0.0.1", 0.0)
    admission.authenticate(place, COMMON)
    admission.release(place)
    admission.release(place)
    assert (admission.pending, admission.sessions) == (0, 0)
    again = admission.open("10.0.0.1", 0.0)
    admission.authenticate(again, COMMON)
    pending = admission.open("10.0.0.2", 0.0)
    admission.release(pending)
    admission.release(pending)
    assert (admission.pending, admission.sessions) == (0, 1)


def test_new_connections_per_address_are_rate_limited_with_a_burst():
    admission = Admission(replace(LIMITS, connection_rate=2.0, connection_burst=3))
    for _ in range(3):
        admission.release(admission.open("10.0.0.1", 0.0))
    assert refusal(lambda: admission.open("10.0.0.1", 0.0)) == "rate"
    admission.open("10.0.0.2", 0.0)  # another address has its own bucket
    assert refusal(lambda: admission.open("10.0.0.1", 0.4)) == "rate"
    admission.release(admission.open("10.0.0.1", 0.5))  # one token back after 1/rate s
    assert refusal(lambda: admission.open("10.0.0.1", 0.6)) == "rate"
    for _ in range(3):  # a full burst after burst/rate s
        admission.release(admission.open("10.0.0.1", 10.0))


def test_rate_buckets_of_idle_addresses_are_forgotten():
    admission = Admission(replace(LIMITS, connection_rate=1.0, connection_burst=2))
    for n in range(TRACKED_ADDRESSES):
        admission.release(admission.open(str(ipaddress.IPv4Address(n + 1)), 0.0))
    assert len(admission._buckets) == TRACKED_ADDRESSES
    admission.release(admission.open("10.200.0.1", 5.0))
    assert len(admission._buckets) == 1


def test_an_ipv6_client_counts_its_whole_64_block_as_one_address():
    admission = Admission(LIMITS)
    admission.open("2001:db8:1:2::1", 0.0)
    admission.open("2001:db8:1:2::ffff", 0.0)
    assert refusal(lambda: admission.open("2001:db8:1:2:abcd::1", 0.0)) == "pending_per_address"
    admission.open("2001:db8:1:3::1", 0.0)


# -- client addresses -----------------------------------------------------------------------------

PROXIES = (ipaddress.ip_network("10.1.0.0/16"), ipaddress.ip_network("::1/128"))


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "expected"),
    [
        # No proxy is trusted for these peers: the header is the client's own word.
        ("203.0.113.7", ["198.51.100.1"], "203.0.113.7"),
        ("10.2.0.1", ["198.51.100.1"], "10.2.0.1"),
        # From a trusted proxy: the last hop that is not a trusted proxy.
        ("10.1.0.5", ["198.51.100.1"], "198.51.100.1"),
        ("10.1.0.5", ["198.51.100.1, 10.1.0.9"], "198.51.100.1"),
        ("10.1.0.5", ["198.51.100.1", "10.1.0.9"], "198.51.100.1"),
        # A client that sends its own header cannot choose its address: only the hop the
        # trusted proxy appended counts.
        ("10.1.0.5", ["1.2.3.4, 198.51.100.1"], "198.51.100.1"),
        ("10.1.0.5", ["10.1.0.77, 198.51.100.1"], "198.51.100.1"),
        # Garbage or nothing from the proxy: the proxy itself is all that is known.
        ("10.1.0.5", ["not-an-address"], "10.1.0.5"),
        ("10.1.0.5", [""], "10.1.0.5"),
        ("10.1.0.5", [], "10.1.0.5"),
        ("10.1.0.5", ["198.51.100.1, bogus"], "10.1.0.5"),
        # Every hop is a trusted proxy: the first one is the client.
        ("10.1.0.5", ["10.1.0.8, 10.1.0.9"], "10.1.0.8"),
        # Ports and IPv6 as proxies write them.
        ("::1", ["[2001:db8::5]:4711"], "2001:db8::5"),
        ("::1", ["198.51.100.1:80"], "198.51.100.1"),
        ("::ffff:10.1.0.5", ["198.51.100.1"], "198.51.100.1"),
        (None, ["198.51.100.1"], "unknown"),
    ],
)
def test_client_address(peer, forwarded_for, expected):
    assert client_address(peer, forwarded_for, PROXIES) == expected


def test_without_trusted_proxies_the_header_is_ignored():
    assert client_address("127.0.0.1", ["198.51.100.1"], ()) == "127.0.0.1"


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("192.0.2.1", "192.0.2.1"),
        ("2001:db8:a:b:c:d:e:f", "2001:db8:a:b::/64"),
        ("::ffff:192.0.2.1", "::ffff:192.0.2.1"),
        ("unknown", "unknown"),
    ],
)
def test_limit_keys(address, key):
    assert limit_key(address) == key


def test_parse_address_rejects_names():
    assert parse_address("example.org") is None
    assert parse_address("[::1") == ipaddress.ip_address("::1")
    assert parse_address("1.2.3") is None


# -- the failed-authentication throttle --------------------------------------------------------


def test_failed_authentications_get_rising_delays_then_a_refusal():
    throttle = AuthThrottle(base_delay_s=1.0, max_delay_s=5.0, max_failures=4, window_s=60.0)
    delays = [throttle.delay_after_failure("10.0.0.1", float(t)) for t in range(4)]
    assert delays == [1.0, 2.0, 4.0, 5.0]
    assert throttle.is_refused("10.0.0.1", 4.0)
    assert not throttle.is_refused("10.0.0.2", 4.0)
    assert not throttle.is_refused("10.0.0.1", 64.0)  # the window has passed


def test_the_throttle_forgets_addresses_whose_window_has_passed():
    throttle = AuthThrottle(base_delay_s=1.0, window_s=60.0)
    for n in range(THROTTLED_ADDRESSES):
        throttle.delay_after_failure(str(ipaddress.IPv4Address(n + 1)), 0.0)
    throttle.delay_after_failure("10.200.0.1", 30.0)  # within the window: all are kept
    assert len(throttle._failures) == THROTTLED_ADDRESSES + 1
    throttle.delay_after_failure("10.200.0.2", 61.0)
    assert set(throttle._failures) == {"10.200.0.1", "10.200.0.2"}
