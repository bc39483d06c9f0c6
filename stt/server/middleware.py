"""ASGI layers between Hypercorn and the Quart app: the door for sockets, and whole HTTP exchanges.

*Admitting WebSockets* happens before Quart sees one: a connection over a limit is
refused with HTTP 503 at the upgrade, without a request context, a task group or
any session state, so a flood costs the server as little as possible.

*Whole HTTP exchanges* work around two things in Hypercorn's Trio worker
(0.17-0.18) with Quart-Trio: Hypercorn closes a ``Connection: close`` exchange and
restarts the keep-alive timer inside the app's last ``send``, which Quart-Trio has
cancelled by then (it cancels the app on ``http.disconnect``), so the socket stayed
open and idle keep-alive connections were never timed out; and a response sent
before the request body was read left the connection unable to parse the next
request.  Here the last send is shielded, and an unread body is drained (up to a
limit) before the response starts, or the response says ``Connection: close``.
"""

from __future__ import annotations

from typing import Any, cast

import trio
from hypercorn.typing import (
    ASGIFramework,
    ASGIReceiveCallable,
    ASGIReceiveEvent,
    ASGISendCallable,
    ASGISendEvent,
    HTTPScope,
    Scope,
    WebsocketResponseStartEvent,
    WebsocketScope,
)

from stt.server.addresses import client_address
from stt.server.admission import Place, Refused
from stt.server.service import SpeechService
from stt.settings import IpNetwork

#: Where the admitted connection's place is handed to the app, in the ASGI scope.
PLACE_KEY = "sepia_stt.place"
#: Seconds a client refused at a connection limit is told to wait (``Retry-After``).
RETRY_AFTER_S = 5
#: An unread request body is read and dropped up to this size and time, so the
#: connection can serve the next request; a larger or slower one closes it.
DRAIN_BYTES = 1 << 20
DRAIN_S = 2.0


class AdmitWebSockets:
    """Gives each WebSocket a place (pending until it authenticates), or refuses it with 503."""

    def __init__(self, app: ASGIFramework, service: SpeechService) -> None:
        self._app = app
        self._service = service
        self._trusted = service.settings.server.trusted_proxies

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] != "websocket":
            await self._app(scope, receive, send)
            return
        address = address_of(scope, self._trusted)
        try:
            place = self._service.open_connection(address, trio.current_time())
        except Refused as refusal:
            await _refuse(send, f"ServerBusy: {refusal.message}")
            return
        try:
            await self._app(cast(Scope, {**scope, PLACE_KEY: place}), receive, send)
        finally:
            self._service.release(place)  # already done, unless the session never started


def address_of(scope: HTTPScope | WebsocketScope, trusted: tuple[IpNetwork, ...]) -> str:
    """The client's address: the peer, or whom a trusted proxy names (``X-Forwarded-For``)."""
    peer = scope.get("client")
    forwarded = [
        value.decode("latin-1") for name, value in scope["headers"] if name == b"x-forwarded-for"
    ]
    return client_address(peer[0] if peer else None, forwarded, trusted)


def place_of(scope: Scope) -> Place:
    """The place the admission layer gave this WebSocket."""
    place: Place = cast(dict[str, Any], scope)[PLACE_KEY]
    return place


async def _refuse(send: ASGISendCallable, text: str) -> None:
    body = text.encode()
    start: WebsocketResponseStartEvent = {
        "type": "websocket.http.response.start",
        "status": 503,
        "headers": [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(RETRY_AFTER_S).encode()),
        ],
    }
    await send(start)
    await send({"type": "websocket.http.response.body", "body": body, "more_body": False})


class WholeHttpExchanges:
    """Each HTTP exchange ends with its connection ready for the next request, or closed."""

    def __init__(self, app: ASGIFramework) -> None:
        self._app = app

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        http1 = scope.get("http_version", "1.1") in ("1.0", "1.1")
        body_read = trio.Event()
        received = 0
        complete = False

        async def receive_counted() -> ASGIReceiveEvent:
            nonlocal received, complete
            message = await receive()
            if message["type"] == "http.request":
                received += len(message["body"])
                complete = not message["more_body"]
            else:
                complete = True  # http.disconnect
            if complete or received > DRAIN_BYTES:
                body_read.set()
            return message

        async def send_whole(message: ASGISendEvent) -> None:
            if message["type"] == "http.response.start" and http1 and not complete:
                # Quart-Trio goes on reading the body meanwhile; wait for it a little.
                with trio.move_on_after(DRAIN_S):
                    await body_read.wait()
                if not complete:
                    headers = [(k, v) for k, v in message["headers"] if k.lower() != b"connection"]
                    message = {**message, "headers": [*headers, (b"connection", b"close")]}
            if message["type"] == "http.response.body" and not message["more_body"]:
                with trio.CancelScope(shield=True):
                    await send(message)
            else:
                await send(message)

        await self._app(scope, receive_counted, send_whole)
