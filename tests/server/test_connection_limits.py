"""The door and the HTTP edges against the real server: per-address caps, trusted proxies,
``Connection: close`` and unread request bodies."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import trio

from tests.support.flood import RawWebSocket, connect_from
from tests.support.running import RunningServer, write_settings

DOOR = """
max_pending_per_address = 2
trusted_proxies = 127.0.0.1
"""


@pytest.fixture(scope="module")
def door_server(tmp_path_factory) -> Iterator[RunningServer]:
    # The server listens on 127.0.0.1; clients connect to it from other loopback addresses.
    running = RunningServer(write_settings(tmp_path_factory.mktemp("door"), server_extra=DOOR))
    yield running
    running.stop()


def port_of(server: RunningServer) -> int:
    return int(server.http_url.rsplit(":", 1)[1])


async def metric(server: RunningServer, line_start: str) -> float:
    stream = await connect_from("127.0.0.1", port_of(server))
    async with stream:
        await stream.send_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        with trio.fail_after(5):  # read to the end: the server closes after the response
            while chunk := await stream.receive_some(65536):
                data += chunk
    lines = data.decode().splitlines()
    return sum(float(line.split()[-1]) for line in lines if line.startswith(line_start))


async def open_sockets(
    server: RunningServer, source: str, count: int, forwarded_for: str | None = None
) -> list[RawWebSocket]:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else None
    return [await RawWebSocket.open(source, port_of(server), headers=headers) for _ in range(count)]


async def close_all(sockets: list[RawWebSocket]) -> None:
    for websocket in sockets:
        await websocket.aclose()


async def test_an_address_gets_a_few_pending_sockets_then_503_at_the_upgrade(door_server):
    refused_before = await metric(door_server, 'sepia_stt_refusals_total{reason="pending_per')
    sockets = await open_sockets(door_server, "127.0.0.21", 3)
    assert [s.status for s in sockets] == [101, 101, 503]
    # Another address is not affected.
    other = await open_sockets(door_server, "127.0.0.22", 1)
    assert other[0].status == 101
    assert await metric(door_server, "sepia_stt_pending_connections") == 3
    refused_after = await metric(door_server, 'sepia_stt_refusals_total{reason="pending_per')
    assert refused_after == refused_before + 1
    await close_all(sockets + other)
    with trio.fail_after(5):
        while await metric(door_server, "sepia_stt_pending_connections"):
            await trio.sleep(0.05)
    # The places are free again once the sockets are gone.
    again = await open_sockets(door_server, "127.0.0.21", 2)
    assert [s.status for s in again] == [101, 101]
    await close_all(again)


async def test_behind_a_trusted_proxy_each_forwarded_client_is_counted_on_its_own(door_server):
    # 127.0.0.1 is the trusted proxy here: the client is the address it forwards.
    first = await open_sockets(door_server, "127.0.0.1", 3, forwarded_for="198.51.100.1")
    second = await open_sockets(door_server, "127.0.0.1", 2, forwarded_for="198.51.100.2")
    assert [s.status for s in first] == [101, 101, 503]
    assert [s.status for s in second] == [101, 101]
    await close_all(first + second)


async def test_an_untrusted_peer_cannot_pick_its_address_with_the_header(door_server):
    sockets = [
        (await open_sockets(door_server, "127.0.0.23", 1, forwarded_for=f"198.51.100.{n}"))[0]
        for n in range(10, 13)
    ]
    assert [s.status for s in sockets] == [101, 101, 503]
    await close_all(sockets)


# -- HTTP edges ---------------------------------------------------------------------------------


async def exchange(server: RunningServer, request: bytes) -> tuple[bytes, bool]:
    """Send a request; what came back within 3 s, and whether the server closed the socket."""
    stream = await connect_from("127.0.0.1", port_of(server))
    data = b""
    async with stream:
        await stream.send_all(request)
        with trio.move_on_after(3):
            while chunk := await stream.receive_some(65536):
                data += chunk
            return data, True
    return data, False


async def test_connection_close_is_honoured(door_server):
    data, closed = await exchange(
        door_server, b"GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert data.startswith(b"HTTP/1.1 200") and b'"result":"success"' in data.replace(b" ", b"")
    assert closed


async def test_http_1_0_is_answered_and_closed(door_server):
    data, closed = await exchange(door_server, b"GET /ping HTTP/1.0\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 200") or data.startswith(b"HTTP/1.0 200")
    assert closed


def post_then_get(path: bytes, body: bytes) -> bytes:
    return (
        b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        + b"GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )  # fmt: skip


@pytest.mark.parametrize("path", [b"/no-such-path", b"/ping"])
async def test_a_request_after_an_unread_body_is_answered(door_server, path):
    # A 404 (or 405) is sent without reading the body: the next request must still work.
    data, closed = await exchange(door_server, post_then_get(path, b"x" * 200_000))
    first, _, rest = data.partition(b"\r\n\r\n")
    assert first.split(b" ")[1] in (b"404", b"405")
    assert b"HTTP/1.1 200" in rest and b"success" in rest
    assert closed


async def test_an_unread_body_too_large_to_drain_closes_the_connection(door_server):
    stream = await connect_from("127.0.0.1", port_of(door_server))
    async with stream:
        await stream.send_all(
            b"POST /no-such-path HTTP/1.1\r\nHost: x\r\nContent-Length: 50000000\r\n\r\n"
        )
        data = b""
        with trio.fail_after(10):
            try:
                while True:
                    await stream.send_all(b"x" * 65536)  # until the server stops reading
                    with trio.move_on_after(0.01):
                        data += await stream.receive_some(65536)
                    if data.endswith(b"Not Found") or b"\r\n\r\n" in data:
                        break
            except trio.BrokenResourceError:
                pass
            while chunk := await _receive_or_nothing(stream):
                data += chunk
    assert data.startswith(b"HTTP/1.1 404")
    assert b"connection: close" in data.lower()


async def _receive_or_nothing(stream: trio.SocketStream) -> bytes:
    try:
        return await stream.receive_some(65536)
    except trio.BrokenResourceError:
        return b""
