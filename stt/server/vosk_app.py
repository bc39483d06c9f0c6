"""vosk-server's WebSocket API on Trio: ``/vosk`` on the main port, and its own listener.

The rules are ``stt.vosk_server.session.VoskSession``; the same ``Connection`` carries
them, with the same admission, engine slots, drain and metrics as SEPIA's sessions.
vosk-server has no authentication, so a token comes with the upgrade request:
``?token=T`` (and ``&user=NAME`` for a per-user token), or ``Authorization: Bearer T``
or ``Basic base64(NAME:T)``.  ``[vosk_server] auth = auto`` asks for one unless the
listener is on loopback.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from typing import Any, cast

import trio
from hypercorn.typing import ASGIFramework
from quart import Websocket, websocket
from quart_trio import QuartTrio

from stt.server.auth import Credentials, request_credentials
from stt.server.connection import Connection
from stt.server.middleware import AdmitWebSockets, WholeHttpExchanges, place_of
from stt.server.service import SpeechService
from stt.vosk_server.session import VoskConfig, VoskSession


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def auth_required(auth: str, host: str) -> bool:
    """``on``, ``off``, or ``auto``: required unless the listener is on loopback."""
    return auth == "on" or (auth == "auto" and not is_loopback(host))


def vosk_rules(service: SpeechService, credentials: Credentials | None) -> VoskSession:
    """A vosk-server session with the settings' defaults; ``credentials`` None: no auth."""
    settings = service.settings
    vosk = settings.vosk_server
    config = VoskConfig(
        sample_rate=vosk.sample_rate,
        words=vosk.words,
        max_alternatives=vosk.max_alternatives,
        model=vosk.model or None,
        speaker=settings.speaker_model is not None,
    )
    return VoskSession(
        config=config,
        credentials=credentials,
        timeout_s=settings.server.timeout_s,
        now=trio.current_time(),
        max_session_s=settings.server.max_session_s,
        max_frame_bytes=settings.server.max_frame_bytes,
    )


def vosk_socket(
    service: SpeechService, listener_host: str, new_session_id: Callable[[], str]
) -> Callable[[], Awaitable[None]]:
    """The WebSocket handler for vosk-server's API on a listener bound to ``listener_host``."""
    required = auth_required(service.settings.vosk_server.auth, listener_host)

    async def handle() -> None:
        # The request object itself, not the context-local proxy, goes to the session's tasks.
        current: Websocket = cast(Any, websocket)._get_current_object()
        headers = {name.lower(): value for name, value in current.headers.items()}
        query = current.args.to_dict()
        credentials = request_credentials(headers, query) if required else None
        rules = vosk_rules(service, credentials)
        await Connection(current, service, new_session_id(), place_of(current.scope), rules).run()

    return handle


def create_vosk_asgi_app(
    service: SpeechService, new_session_id: Callable[[], str]
) -> ASGIFramework:
    """The app of vosk-server's own listener: any path is the API, as in vosk-server."""
    app = QuartTrio(__name__)
    settings = service.settings
    host = settings.vosk_server.host or settings.server.host
    handle = vosk_socket(service, host, new_session_id)
    app.add_websocket("/", "vosk", handle)
    app.add_websocket("/<path:path>", "vosk_path", lambda path: handle())
    return WholeHttpExchanges(AdmitWebSockets(app, service))
