"""The Quart-Trio app: REST endpoints, static pages and the WebSocket routes."""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any, cast

import trio
from hypercorn.typing import ASGIFramework
from prometheus_client import CONTENT_TYPE_LATEST
from quart import Response, Websocket, redirect, request, websocket
from quart_trio import QuartTrio

from stt import PROTOCOL_VERSION
from stt.sepia.session import SessionProtocol
from stt.server.connection import Connection
from stt.server.middleware import AdmitWebSockets, WholeHttpExchanges, place_of
from stt.server.openai_app import OpenAiApi
from stt.server.service import SpeechService
from stt.server.vosk_app import vosk_socket

WWW_DIR = Path(__file__).resolve().parent.parent / "www"
#: The old server's session ids cycle 1..9999 with the start time appended.
_SESSION_NUMBERS = itertools.cycle(range(1, 10_000))
#: Request bodies the app reads (only ``POST /settings`` so far) are small, and come at once:
#: a client that sends one slower than this is answered ``408`` and closed.
MAX_CONTENT_LENGTH = 1 << 20
BODY_TIMEOUT_S = 10


def new_session_id() -> str:
    return f"{next(_SESSION_NUMBERS)}-{int(time.time())}"


def sepia_rules(service: SpeechService) -> SessionProtocol:
    """A SEPIA session's rules with the server's limits and its shared message ids."""
    server = service.settings.server
    return SessionProtocol(
        timeout_s=server.timeout_s,
        now=trio.current_time(),
        welcome_timeout_s=server.welcome_timeout_s,
        max_session_s=server.max_session_s,
        max_frame_bytes=server.max_frame_bytes,
        ids=service.ids,
    )


def create_asgi_app(service: SpeechService) -> ASGIFramework:
    """What Hypercorn serves: the app behind the admission door and whole HTTP exchanges."""
    return WholeHttpExchanges(OpenAiApi(AdmitWebSockets(create_app(service), service), service))


def create_app(service: SpeechService) -> QuartTrio:
    app = QuartTrio(__name__, static_folder=str(WWW_DIR), static_url_path="/www")
    app.config["SPEECH_SERVICE"] = service
    app.config["MAX_CONTENT_LENGTH"] = MAX_CONTENT_LENGTH
    app.config["BODY_TIMEOUT"] = BODY_TIMEOUT_S
    allowed_origins = service.settings.server.cors_origins

    @app.after_request
    async def add_cors_headers(response: Response) -> Response:
        origin = request.headers.get("Origin")
        if origin and ("*" in allowed_origins or origin in allowed_origins):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Credentials"] = "true"
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
            response.headers["Access-Control-Allow-Headers"] = request.headers.get(
                "Access-Control-Request-Headers", "Content-Type"
            )
            response.headers["Vary"] = "Origin"
        return response

    @app.get("/")
    async def index() -> Any:
        return redirect("/www/index.html")

    @app.get("/online")
    async def online() -> tuple[str, int]:
        return "", 204

    @app.get("/ping")
    async def ping() -> dict[str, str]:
        return {"result": "success", "server": "SEPIA STT Server", "version": PROTOCOL_VERSION}

    @app.get("/settings")
    async def get_settings() -> dict[str, Any]:
        return {"result": "success", "settings": service.info()}

    @app.get("/health")
    async def health() -> dict[str, str]:
        """The process is alive and its event loop answers."""
        return {"status": "ok"}

    @app.get("/ready")
    async def ready() -> tuple[dict[str, Any], int]:
        """Models loaded, not shutting down, below the session limit: send traffic here."""
        accepting = service.accepting
        body = {"ready": accepting, "draining": service.drain_started.is_set()}
        return body, 200 if accepting else 503

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(service.metrics.exposition(), content_type=CONTENT_TYPE_LATEST)

    @app.post("/settings")
    async def post_settings() -> tuple[dict[str, str], int]:
        # Read the body even though it is unused: answering before it is read can
        # leave a keep-alive connection waiting for the rest of it.
        await request.get_data()
        return {
            "error": "Not implemented. Please use WebSocket 'welcome' message "
            "to choose model, language and task per session."
        }, 501

    allowed_ws_origins = service.settings.server.ws_allowed_origins

    async def socket() -> Response | None:
        origin = websocket.headers.get("Origin")
        if allowed_ws_origins and origin and origin not in allowed_ws_origins:
            # Refused at the handshake: a page from another site may not use this server.
            return Response(f"Origin {origin} is not allowed.", status=403)
        # The request object itself, not the context-local proxy, goes to the session's tasks.
        current: Websocket = cast(Any, websocket)._get_current_object()
        connection = Connection(
            current, service, new_session_id(), place_of(current.scope), sepia_rules(service)
        )
        await connection.run()
        return None

    # "//socket" is what the SEPIA JS class builds from a base URL with a trailing slash.
    for path in ("/", "/socket", "//socket"):
        app.add_websocket(path, f"socket{path}", socket)
    if service.settings.vosk_server.enabled:
        host = service.settings.server.host
        app.add_websocket("/vosk", "vosk", vosk_socket(service, host, new_session_id))
    return app
