"""Hostile clients for the flood test: raw sockets from chosen loopback addresses.

Every address in 127.0.0.0/8 is local, so one machine can play many hosts.
``python -m tests.support.flood PORT SECONDS`` runs the whole flood in its own process
(so it does not share an event loop with the real users it is measured against)
and prints what it saw as JSON.  Everything is bounded in time and talks only to
loopback.
"""

from __future__ import annotations

import argparse
import json
import resource
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    RejectConnection,
    Request,
    TextMessage,
)

RECEIVE_BYTES = 65536

IDLE_HOSTS = [f"127.0.0.{n}" for n in range(2, 7)]
WRONG_TOKEN_HOSTS = ["127.0.0.7", "127.0.0.8"]
GARBAGE_HOST = "127.0.0.9"
SLOW_HOST = "127.0.0.10"
IDLE_SOCKETS = 1000
GARBAGE_SOCKETS = 100
SLOW_SOCKETS_EACH = 5
WRONG_TOKENS_PER_S = 200
WRONG_TOKEN_SECONDS = 10
#: The default welcome timeout: the idle sockets come back this often.
WELCOME_TIMEOUT_S = 5


Holder = Callable[["RawWebSocket"], Awaitable[None]]


async def connect_from(source: str, port: int) -> trio.SocketStream:
    """A TCP connection to the server on 127.0.0.1 from the local address ``source``."""
    sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        await sock.bind((source, 0))
        await sock.connect(("127.0.0.1", port))
    except BaseException:
        sock.close()
        raise
    return trio.SocketStream(sock)


@dataclass
class Tally:
    """What the hostile clients saw, by kind: accepted, refused (HTTP status), closed..."""

    counts: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1


class RawWebSocket:
    """A WebSocket client made of wsproto and a socket bound to a chosen address."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.connection = WSConnection(ConnectionType.CLIENT)
        self.status: int | None = None
        self.closed = False
        self._sending = trio.Lock()

    @classmethod
    async def open(
        cls, source: str, port: int, path: str = "/socket", headers: dict[str, str] | None = None
    ) -> RawWebSocket:
        """Connect and upgrade; ``status`` is 101 when accepted, else the HTTP refusal."""
        client = cls(await connect_from(source, port))
        extra = [(name.encode(), value.encode()) for name, value in (headers or {}).items()]
        request = Request(host="127.0.0.1", target=path, extra_headers=extra)
        await client.stream.send_all(client.connection.send(request))
        while client.status is None:
            if not await client._pump():
                client.status = 0  # closed before any answer
        return client

    async def send_text(self, text: str) -> None:
        await self._send(TextMessage(data=text))

    async def send_json(self, message: dict) -> None:
        await self.send_text(json.dumps(message))

    async def send_bytes(self, data: bytes) -> None:
        await self._send(BytesMessage(data=data))

    async def _send(self, event: Event) -> None:
        """Send unless the connection is closing; a server that hung up is not an error here."""
        async with self._sending:
            if self.closed or self.connection.state is not ConnectionState.OPEN:
                return
            try:
                await self.stream.send_all(self.connection.send(event))
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self.closed = True

    async def wait_closed(self) -> None:
        """Read (and drop) whatever comes until the server closes the connection."""
        while await self._pump():
            pass

    async def aclose(self) -> None:
        await self.stream.aclose()

    async def _pump(self) -> bool:
        """Read once and handle the events; False once the connection is gone."""
        try:
            data = await self.stream.receive_some(RECEIVE_BYTES)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            data = b""
        if not data:
            self.closed = True
            return False
        self.connection.receive_data(data)
        for event in self.connection.events():
            if isinstance(event, AcceptConnection):
                self.status = 101
            elif isinstance(event, RejectConnection):
                self.status = event.status_code
            elif isinstance(event, CloseConnection):
                await self._send(event.response())
                self.closed = True
                return False
        return True


async def refused_or_accepted(
    tally: Tally, kind: str, source: str, port: int
) -> RawWebSocket | None:
    """Open a socket; count how it went (``<kind> accepted``, ``<kind> refused 503``, ...)."""
    try:
        websocket = await RawWebSocket.open(source, port)
    except OSError:
        tally.add(f"{kind} connect failed")
        return None
    if websocket.status == 101:
        tally.add(f"{kind} accepted")
        return websocket
    tally.add(f"{kind} refused {websocket.status}")
    await websocket.aclose()
    return None


# -- the hostile hosts ---------------------------------------------------------------------------


async def reconnecting(
    kind: str, host: str, port: int, until: float, tally: Tally, hold: Holder
) -> None:
    """Open a socket and ``hold`` it until the server closes it; then (or, when refused,
    after ``WELCOME_TIMEOUT_S``) again, until ``until``."""
    while trio.current_time() < until:
        websocket = await refused_or_accepted(tally, kind, host, port)
        if websocket is None:
            await trio.sleep(WELCOME_TIMEOUT_S)
            continue
        with trio.move_on_at(until):
            await hold(websocket)
            tally.add(f"{kind} closed by the server")
        await websocket.aclose()


async def say_nothing(websocket: RawWebSocket) -> None:
    """An idle socket: never a welcome."""
    await websocket.wait_closed()


async def send_garbage(websocket: RawWebSocket) -> None:
    """Broken JSON and audio before any welcome, ten frames a second, until closed."""
    async with trio.open_nursery() as nursery:
        nursery.start_soon(websocket.wait_closed)
        while not websocket.closed:
            await websocket.send_text("{not json")
            await websocket.send_bytes(b"\xff" * 3200)
            await trio.sleep(0.1)


async def wrong_token(port: int, host: str, tally: Tally) -> None:
    websocket = await refused_or_accepted(tally, "wrong token", host, port)
    if websocket is None:
        return
    welcome = {"type": "welcome", "msg_id": 1, "client_id": "any", "access_token": "guess"}
    with trio.move_on_after(WRONG_TOKEN_SECONDS):
        await websocket.send_json(welcome)
        await websocket.wait_closed()
        tally.add("wrong token closed by the server")
    await websocket.aclose()


async def wrong_tokens(port: int, tally: Tally) -> None:
    """Wrong-token welcomes on new sockets, on schedule however long each one takes."""
    started = trio.current_time()
    async with trio.open_nursery() as nursery:
        for n in range(WRONG_TOKENS_PER_S * WRONG_TOKEN_SECONDS):
            await trio.sleep_until(started + n / WRONG_TOKENS_PER_S)
            host = WRONG_TOKEN_HOSTS[n % len(WRONG_TOKEN_HOSTS)]
            tally.add("wrong token launched")
            nursery.start_soon(wrong_token, port, host, tally)


#: Slow requests: what is sent at once, then what follows a byte every half second.
SLOW_REQUESTS = {
    "headers": (b"GET /ping HTTP/1.1\r\n", b"Host: 127.0.0.1\r\nX-Slow: " + b"a" * 200),
    "upgrade": (
        b"GET /socket HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n",
        b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n",
    ),
    "body": (
        b"POST /settings HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000000\r\n\r\n",
        b"x" * 1000,
    ),
}


async def slow_request(port: int, kind: str, until: float, closed_after: dict[str, float]) -> None:
    """Send a request, the end of it a byte every half second; note when the server hangs up."""
    stream = await connect_from(SLOW_HOST, port)
    started = trio.current_time()
    start, rest = SLOW_REQUESTS[kind]

    def note_closed() -> None:
        closed_after[kind] = max(closed_after.get(kind, 0), trio.current_time() - started)

    async def dribble() -> None:
        try:
            await stream.send_all(start)
            for i in range(len(rest)):
                await stream.send_all(rest[i : i + 1])
                await trio.sleep(0.5)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the server hung up: the reading side notes when

    async with stream:
        with trio.move_on_at(until):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(dribble)
                try:
                    while await stream.receive_some(4096):
                        pass  # an answer (say 408) may come before the close
                except trio.BrokenResourceError:
                    pass
                note_closed()
                nursery.cancel_scope.cancel()


async def flood(port: int, seconds: float) -> dict:
    """All of the hostile clients at once for ``seconds``; what they saw."""
    tally = Tally()
    slow_closed: dict[str, float] = {}
    until = trio.current_time() + seconds
    # A connection the server's backlog dropped is retried by TCP for a long while: at the
    # end, whatever is still going is stopped.
    with trio.move_on_at(until + 1):
        async with trio.open_nursery() as nursery:
            await _start_flood(nursery, port, until, tally, slow_closed)
    used = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "tally": tally.counts,
        "slow_closed_after_s": slow_closed,
        "cpu_s": round(used.ru_utime + used.ru_stime, 1),
    }


async def _start_flood(
    nursery: trio.Nursery, port: int, until: float, tally: Tally, slow_closed: dict[str, float]
) -> None:
    for n in range(IDLE_SOCKETS):
        host = IDLE_HOSTS[n % len(IDLE_HOSTS)]
        nursery.start_soon(reconnecting, "idle", host, port, until, tally, say_nothing)
    for _ in range(GARBAGE_SOCKETS):
        nursery.start_soon(reconnecting, "garbage", GARBAGE_HOST, port, until, tally, send_garbage)
    for kind in SLOW_REQUESTS:
        for _ in range(SLOW_SOCKETS_EACH):
            nursery.start_soon(slow_request, port, kind, until, slow_closed)
    nursery.start_soon(wrong_tokens, port, tally)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("port", type=int)
    parser.add_argument("seconds", type=float)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 4 * (IDLE_SOCKETS + GARBAGE_SOCKETS + WRONG_TOKENS_PER_S * WRONG_TOKEN_SECONDS)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(soft, wanted), hard), hard))
    print(json.dumps(trio.run(flood, args.port, args.seconds)), flush=True)


if __name__ == "__main__":
    main()
