"""Limits, auth hygiene, TLS, drain and metrics, against the real running server."""

from __future__ import annotations

import contextlib
import signal
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
import trio
from trio_websocket import (
    ConnectionClosed,
    ConnectionRejected,
    DisconnectionTimeout,
    open_websocket_url,
    wrap_client_stream,
)

from stt.client import ServerError, SttClient
from stt.server.auth import hash_token, token_matches
from tests.support.audio import silence
from tests.support.running import RunningServer, gauge, write_settings
from tests.support.websocket import assert_error, closed_code, raw_socket, receive, send, welcome

LIMITS = """
max_sessions = 3
max_sessions_per_user = 2
max_sessions_per_address = 2
max_frame_bytes = 65536
welcome_timeout_s = 1
max_session_s = 4
ws_allowed_origins = http://good.example
"""


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory) -> Iterator[RunningServer]:
    users = (
        f"user2 = bob\ntoken2 = {hash_token('bob-secret', iterations=1000)}\n"
        "user3 = carol\ntoken3 = carol-secret\n"
    )
    folder = tmp_path_factory.mktemp("strict")
    running = RunningServer(write_settings(folder, server_extra=LIMITS, users_extra=users))
    yield running
    running.stop()


async def get(server: RunningServer, path: str, **kwargs) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.http_url, **kwargs) as http:
        return await http.get(path)


async def wait_until_idle(server: RunningServer) -> None:
    """Sessions of an earlier test are closed (the server notices a close a little later)."""
    with trio.fail_after(10):
        while await gauge(server, "sepia_stt_active_sessions"):
            await trio.sleep(0.05)


# -- limits -------------------------------------------------------------------------------


async def test_session_limit_refuses_with_503_and_ready_says_so(strict_server):
    await wait_until_idle(strict_server)
    async with trio.open_nursery() as nursery:
        for client_id, token in (
            ("u1", "test1234"),
            ("alice", "alice-secret"),
            ("bob", "bob-secret"),
        ):
            await nursery.start(hold_session, strict_server, client_id, token)
        assert (await get(strict_server, "/ready")).status_code == 503
        # A connection is not refused before it authenticates: the limit counts sessions.
        async with raw_socket(strict_server) as websocket:
            await send(websocket, welcome(client_id="carol", token="carol-secret"))
            error = await receive(websocket)
            assert_error(error, 503, "ServerBusy")
            assert "limit of 3 sessions" in error["message"]
            assert await closed_code(websocket) == 1013
        nursery.cancel_scope.cancel()
    with trio.fail_after(5):
        while (await get(strict_server, "/ready")).status_code != 200:
            await trio.sleep(0.05)


async def hold_session(
    server: RunningServer, client_id: str, token: str = "test1234", *, task_status
) -> None:
    async with SttClient.connect(server.http_url) as client:
        await client.welcome({"model": "test-engine"}, client_id=client_id, token=token)
        task_status.started(client)
        while True:  # keep it busy, so the welcome and idle timeouts do not end it
            await client.send_audio(silence(0.1))
            await trio.sleep(0.2)


async def test_sessions_per_user_are_limited_for_per_user_tokens(strict_server):
    await wait_until_idle(strict_server)
    async with trio.open_nursery() as nursery:
        for _ in range(2):
            await nursery.start(hold_session, strict_server, "carol", "carol-secret")
        async with SttClient.connect(strict_server.http_url) as client:
            with pytest.raises(ServerError) as error:
                await client.welcome(
                    {"model": "test-engine"}, client_id="carol", token="carol-secret"
                )
        assert error.value.name == "ServerBusy"
        assert "carol" in error.value.message["message"]
        nursery.cancel_scope.cancel()


async def test_common_token_sessions_are_limited_per_address_not_per_claimed_id(strict_server):
    # Any client may call itself anything with the common token: the id proves nothing.
    await wait_until_idle(strict_server)
    async with trio.open_nursery() as nursery:
        for client_id in ("any", "any"):
            await nursery.start(hold_session, strict_server, client_id)
        async with SttClient.connect(strict_server.http_url) as client:
            with pytest.raises(ServerError) as error:
                await client.welcome({"model": "test-engine"}, client_id="someone-else")
        assert error.value.name == "ServerBusy"
        assert "address" in error.value.message["message"]
        # A per-user token is counted for its user, not the address.
        async with SttClient.connect(strict_server.http_url) as client:
            await client.welcome({"model": "test-engine"}, client_id="alice", token="alice-secret")
        nursery.cancel_scope.cancel()


async def test_a_session_stops_counting_once_its_final_is_sent(strict_server):
    # Two common-token sessions fill the address's places; they get their finals and keep
    # their sockets open (a client may close a little later): a new session still gets in.
    await wait_until_idle(strict_server)
    async with (
        SttClient.connect(strict_server.http_url) as first,
        SttClient.connect(strict_server.http_url) as second,
    ):
        for client in (first, second):
            await client.welcome({"model": "test-engine"})
        for client in (first, second):
            result = await client.transcribe(silence(0.2))
            assert result.final["transcript"] == "[processed bytes: 6400]"
        async with SttClient.connect(strict_server.http_url) as third:
            await third.welcome({"model": "test-engine"})
            assert (await third.transcribe(silence(0.1))).final["isFinal"]


async def test_a_too_large_frame_is_refused_and_nothing_else_is_lost(strict_server):
    async with SttClient.connect(strict_server.http_url) as client:
        await client.welcome({"model": "test-engine"})
        await client.send_audio(silence(0.5))
        await client.websocket.send_message(bytes(70_000))
        message = await client.receive()
        while message["type"] == "result":
            message = await client.receive()
        assert_error(message, 413, "MessageTooLarge")
        result = await client.transcribe(silence(0.5))
    # Both half seconds arrived; the large frame did not.
    assert result.final["transcript"] == "[processed bytes: 32000]"


async def test_a_client_that_never_says_welcome_is_closed(strict_server):
    async with raw_socket(strict_server) as websocket:
        error = await receive(websocket)
        assert_error(error, 408, "TimeoutMessage")
        assert "welcome" in error["message"]
        assert await closed_code(websocket) == 1013


async def test_sessions_end_at_the_maximum_duration(strict_server):
    async with SttClient.connect(strict_server.http_url) as client:
        await client.welcome({"model": "test-engine"})
        started = trio.current_time()
        with trio.fail_after(10):
            while True:
                # The error and the close may come between a receive and the next send: the
                # send then fails, and the error is still there to be read.
                with contextlib.suppress(ConnectionClosed):
                    await client.send_audio(silence(0.05))
                message = await client.receive()
                if message["type"] == "error":
                    break
        assert_error(message, 408, "TimeoutMessage")
        assert "maximum duration" in message["message"]
        assert trio.current_time() - started >= 3.5


# -- auth ---------------------------------------------------------------------------------------


async def test_hashed_tokens_work(strict_server):
    async with SttClient.connect(strict_server.http_url) as client:
        active = await client.welcome({"model": "test-engine"}, client_id="bob", token="bob-secret")
        assert active["model"] == "test-engine"
    async with SttClient.connect(strict_server.http_url) as client:
        with pytest.raises(ServerError) as error:
            await client.welcome({"model": "test-engine"}, client_id="bob", token="bob-wrong")
        assert error.value.name == "Unauthorized"


@pytest.fixture
def throttled_server(tmp_path) -> Iterator[RunningServer]:
    running = RunningServer(
        write_settings(tmp_path, auth_delay_s=0.2, server_extra="auth_max_failures = 3")
    )
    yield running
    running.stop()


async def test_failed_attempts_are_throttled_then_refused(throttled_server):
    delays = []
    for _ in range(3):
        async with raw_socket(throttled_server) as websocket:
            started = trio.current_time()
            await send(websocket, welcome(token="guess", model="test-engine"))
            assert_error(await receive(websocket), 401, "Unauthorized")
            delays.append(trio.current_time() - started)
    assert delays[0] >= 0.2 and delays[1] >= 0.4 and delays[2] >= 0.8
    # Now even the right token is refused from this address, at once.
    async with raw_socket(throttled_server) as websocket:
        started = trio.current_time()
        await send(websocket, welcome(model="test-engine"))
        error = await receive(websocket)
        assert_error(error, 401, "Unauthorized")
        assert "Too many" in error["message"]
        assert trio.current_time() - started < 0.2
    assert "guess" not in "".join(throttled_server.log), "a token was logged"


async def test_websocket_origins_are_checked(strict_server):
    for origin in ("http://good.example", None):
        headers = [("Origin", origin)] if origin else []
        async with open_websocket_url(
            strict_server.ws_url + "/socket", extra_headers=headers
        ) as ws:
            await send(ws, welcome(model="test-engine"))
            assert (await receive(ws))["type"] == "welcome"
    with pytest.raises(ConnectionRejected) as rejected:
        async with open_websocket_url(
            strict_server.ws_url + "/socket", extra_headers=[("Origin", "http://evil.example")]
        ):
            pass
    assert rejected.value.status_code == 403


# -- observability -----------------------------------------------------------------------------


async def test_health_ready_and_metrics(strict_server):
    assert (await get(strict_server, "/health")).json() == {"status": "ok"}
    assert (await get(strict_server, "/ready")).json() == {"ready": True, "draining": False}
    async with SttClient.connect(strict_server.http_url) as client:
        await client.welcome({"model": "test-engine"})
        await client.transcribe(silence(1.0))
    async with raw_socket(strict_server) as websocket:
        await send(websocket, "not json")
        await receive(websocket)
    metrics = (await get(strict_server, "/metrics")).text
    assert "sepia_stt_active_sessions" in metrics
    assert 'sepia_stt_sessions_total{outcome="completed",protocol="sepia"}' in metrics
    assert 'sepia_stt_errors_total{name="InvalidMessage"}' in metrics
    assert 'sepia_stt_audio_seconds_total{engine="test"}' in metrics
    assert "sepia_stt_decode_realtime_factor_bucket" in metrics
    assert "sepia_stt_auth_failures_total" in metrics
    audio = next(
        line for line in metrics.splitlines()
        if line.startswith('sepia_stt_audio_seconds_total{engine="test"}')
    )  # fmt: skip
    assert float(audio.split()[-1]) >= 1.0


# -- backpressure ---------------------------------------------------------------------------------


async def test_a_fast_sender_is_held_back_at_the_socket(tmp_path):
    slow = "path7 = .\nname7 = slow\nlang7 = it-IT\nengine7 = tests.support.engines:SlowEngine\n"
    running = RunningServer(
        write_settings(tmp_path, extra=slow, server_extra="max_buffered_audio_s = 0.5")
    )
    sent = 0
    try:
        with pytest.raises(DisconnectionTimeout):  # the close waits behind the queued audio
            async with open_websocket_url(running.ws_url + "/socket", disconnect_timeout=1) as ws:
                await send(ws, welcome(model="slow"))
                assert (await receive(ws))["type"] == "welcome"
                # The engine decodes at 1x; send 1 s frames as fast as the socket takes them.
                with trio.move_on_after(3):
                    while True:
                        await ws.send_message(silence(1.0))
                        sent += 32000
                ping = await get(running, "/ping")
    finally:
        running.stop()
    # Unbounded, the server would read gigabytes in 3 s; bounded, only what the
    # socket buffers hold plus what the engine decoded.
    assert sent < 16 * 2**20, f"{sent / 2**20:.0f} MiB went in"
    assert ping.status_code == 200


async def test_a_session_that_waited_for_the_engine_decodes_what_came_meanwhile_at_once(tmp_path):
    slow = "path7 = .\nname7 = slow\nlang7 = it-IT\nengine7 = tests.support.engines:SlowEngine\n"
    running = RunningServer(write_settings(tmp_path, extra=slow, server_extra="decode_threads = 1"))
    try:
        async with (
            SttClient.connect(running.http_url) as busy,
            SttClient.connect(running.http_url) as waiting,
        ):
            await busy.welcome({"model": "slow"})
            await waiting.welcome({"model": "slow", "script": "one two three four five"})
            # The only engine thread decodes 1 s of audio for one session...
            await busy.send_audio(silence(1.0), frame_bytes=32000)
            await trio.sleep(0.2)
            # ... while five 100 ms frames and audioend arrive for the other.
            result = await waiting.transcribe(silence(0.5), frame_bytes=3200)
    finally:
        running.stop()
    # Its turn decodes all five frames in one call (one partial), not the frame that
    # was there when it began to wait, with the rest a turn later.
    assert [p["transcript"] for p in result.partials] == ["one two three four five"]
    assert result.final["transcript"] == "one two three four five"


# -- TLS -------------------------------------------------------------------------------------


async def test_tls_serves_wss_and_https(tmp_path):
    trustme = pytest.importorskip("trustme")
    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1", "localhost")
    certificate.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "server.pem"))
    tls = f"tls_certfile = {tmp_path / 'server.pem'}\ntls_keyfile = {tmp_path / 'server.pem'}"
    running = RunningServer(write_settings(tmp_path, server_extra=tls))
    try:
        assert running.http_url.startswith("https://")
        client_context = ssl.create_default_context()
        authority.configure_trust(client_context)
        async with open_websocket_url(running.ws_url + "/socket", ssl_context=client_context) as ws:
            await send(ws, welcome(model="test-engine"))
            assert (await receive(ws))["type"] == "welcome"
        ping = await get(running, "/ping", verify=client_context)
        assert ping.json()["result"] == "success"
    finally:
        running.stop()


# -- drain --------------------------------------------------------------------------------------


async def exit_status(running: RunningServer) -> int:
    with trio.fail_after(15):
        while running.process.poll() is None:
            await trio.sleep(0.05)
    return running.process.returncode


async def test_sigterm_lets_running_streams_finish_then_exits_0(tmp_path):
    running = RunningServer(write_settings(tmp_path, drain_grace_s=10))
    try:
        async with SttClient.connect(running.http_url) as streaming, raw_socket(running) as idle:
            await streaming.welcome({"model": "test-engine"})
            await streaming.send_audio(silence(0.5))
            running.process.send_signal(signal.SIGTERM)
            # A connection that never said welcome is told and closed.
            assert_error(await receive(idle), 503, "ServerBusy")
            # New sessions are refused while the running one goes on: told ServerBusy and closed
            # (the close may come before the welcome is sent, so either is what a client sees).
            async with SttClient.connect(running.http_url) as late:
                with pytest.raises((ServerError, ConnectionClosed)) as refused:
                    await late.welcome({"model": "test-engine"})
            if isinstance(refused.value, ServerError):
                assert refused.value.name == "ServerBusy"
            else:
                assert (refused.value.reason.code, refused.value.reason.reason) == (
                    1013,
                    "ServerBusy",
                )
            await streaming.send_audio(silence(0.5))
            result = await streaming.transcribe(b"")
            assert result.final["transcript"] == "[processed bytes: 32000]"
        assert await exit_status(running) == 0
    finally:
        running.stop()


async def test_streams_still_open_after_the_grace_period_are_told(tmp_path):
    running = RunningServer(write_settings(tmp_path, drain_grace_s=0.5))
    try:
        async with SttClient.connect(running.http_url) as client:
            await client.welcome({"model": "test-engine"})
            await client.send_audio(silence(0.2))
            running.process.send_signal(signal.SIGTERM)
            with trio.fail_after(10):
                message = await client.receive()
                while message["type"] == "result":
                    message = await client.receive()
            assert_error(message, 503, "ServerBusy")
            assert "shutting down" in message["message"]
        assert await exit_status(running) == 0
    finally:
        running.stop()


def test_token_command_prints_a_hash_the_server_accepts():
    output = subprocess.run(
        [sys.executable, "-m", "stt", "token"], capture_output=True, text=True, check=True
    ).stdout
    token = output.split("token: ")[1].split()[0]
    stored = output.split("tokenN = ")[1].strip()
    assert len(token) >= 32 and token not in stored
    assert token_matches(token, stored)
    assert not token_matches(token + "x", stored)


async def test_a_client_that_stops_reading_is_cut_off_and_counted_out(tmp_path):
    running = RunningServer(write_settings(tmp_path, timeout_s=2))
    try:
        target = urlsplit(running.ws_url)
        sock = trio.socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        await sock.connect((target.hostname, target.port))
        stream = trio.SocketStream(sock)
        async with trio.open_nursery() as nursery:
            websocket = await wrap_client_stream(nursery, stream, target.hostname, "/socket")
            await send(websocket, welcome(model="test-engine"))
            # Every 2-byte frame makes a new partial; none of them is ever read.
            with trio.move_on_after(4):
                while True:
                    await websocket.send_message(b"\0\0")
            await stream.aclose()
            nursery.cancel_scope.cancel()
        with trio.fail_after(15):
            while "sepia_stt_active_sessions 0.0" not in (await get(running, "/metrics")).text:
                await trio.sleep(0.2)
        # Whether the socket buffers filled first (send timeout) or the client went quiet
        # first (idle timeout), the session ended by itself.
        log = "".join(running.log)
        assert "closed: client not reading" in log or "closed: TimeoutMessage" in log
    finally:
        running.stop()
