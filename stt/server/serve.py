"""Start-up and shutdown: load the models, serve with Hypercorn's Trio worker, drain on a signal."""

from __future__ import annotations

import functools
import logging
import signal
import sys

import trio
from hypercorn.config import Config
from hypercorn.trio import serve as hypercorn_serve
from hypercorn.typing import ASGIFramework

from stt.server.app import create_asgi_app, new_session_id
from stt.server.memory import limit_heap_arenas
from stt.server.service import SpeechService
from stt.server.vosk_app import create_vosk_asgi_app
from stt.server.wyoming_listener import wyoming_handler
from stt.settings import Settings

log = logging.getLogger(__name__)

#: The common token the SEPIA server has always shipped with.
SHIPPED_TOKEN = "test1234"
#: Hypercorn drops a frame above this many times the protocol's limit without a message;
#: up to it, the session answers ``413 MessageTooLarge`` and goes on.
FRAME_LIMIT_SLACK = 4
#: After the drain, sessions still open get this long to hear goodbye before Hypercorn stops.
FORCED_CLOSE_S = 2.0
#: Hypercorn's keep-alive timer runs from a connection's start until its request's headers are
#: complete, and again while it is idle between requests: slow or idle clients are cut off here.
KEEP_ALIVE_S = 5.0
#: Request headers (or a request line) larger than this are refused (``431``).
MAX_HEADER_BYTES = 16 * 1024


def hypercorn_config(
    settings: Settings, host: str | None = None, port: int | None = None
) -> Config:
    """Hypercorn's settings for a listener (the main one unless ``host``/``port`` say)."""
    server = settings.server
    config = Config()
    host = server.host if host is None else host
    port = server.port if port is None else port
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.loglevel = server.log_level.upper()
    config.accesslog = None
    # Pings are the protocol's own (JSON); Hypercorn's would only add traffic.
    config.websocket_ping_interval = None
    config.websocket_max_message_size = FRAME_LIMIT_SLACK * server.max_frame_bytes
    config.graceful_timeout = FORCED_CLOSE_S
    config.keep_alive_timeout = KEEP_ALIVE_S
    config.h11_max_incomplete_size = MAX_HEADER_BYTES
    if server.tls_certfile and server.tls_keyfile:
        config.certfile = str(server.tls_certfile)
        config.keyfile = str(server.tls_keyfile)
    return config


async def serve(
    service: SpeechService,
    *,
    task_status: trio.TaskStatus[dict[str, list[str]]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until SIGTERM or SIGINT, then drain: no new sessions, running streams finish.

    Every listener (the main one; vosk-server's API when enabled) is a Hypercorn server
    in this nursery, all stopped by the same drain.  Started, it reports each
    listener's name and bound addresses.
    """
    settings = service.settings
    listeners = {"main": (create_asgi_app(service), hypercorn_config(settings))}
    vosk = settings.vosk_server
    if vosk.enabled:
        vosk_config = hypercorn_config(settings, vosk.host or settings.server.host, vosk.port)
        listeners["vosk-server"] = (create_vosk_asgi_app(service, new_session_id), vosk_config)
    stopped = trio.Event()
    running = len(listeners)

    async def serve_until_stopped(
        app: ASGIFramework, config: Config, task_status: trio.TaskStatus[list[str]]
    ) -> None:
        nonlocal running
        await hypercorn_serve(app, config, shutdown_trigger=stopped.wait, task_status=task_status)
        running -= 1
        if not running:
            nursery.cancel_scope.cancel()  # the signal watcher and the memory keeper are left

    async with trio.open_nursery() as nursery:
        nursery.start_soon(_drain_on_signal, service, stopped)
        nursery.start_soon(service.release_idle_recognizers)
        binds = {
            name: await nursery.start(serve_until_stopped, app, config)
            for name, (app, config) in listeners.items()
        }
        wyoming = settings.wyoming
        if wyoming.enabled:
            # Stopped with the rest: the nursery is cancelled once Hypercorn has stopped.
            handler = wyoming_handler(service, new_session_id)
            serve_tcp = functools.partial(trio.serve_tcp, host=wyoming.host)
            tcp = await nursery.start(serve_tcp, handler, wyoming.port)
            binds["wyoming"] = [_tcp_address(listener) for listener in tcp]
        task_status.started(binds)


def _tcp_address(listener: trio.SocketListener) -> str:
    host, port = listener.socket.getsockname()[:2]
    return f"tcp://[{host}]:{port}" if ":" in host else f"tcp://{host}:{port}"


async def _drain_on_signal(service: SpeechService, stopped: trio.Event) -> None:
    """First signal: drain, then stop.  A second one stops at once."""
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            async for signum in signals:
                name = signal.Signals(signum).name
                if service.drain_started.is_set():
                    log.warning("%s again: stopping now", name)
                    break
                grace = service.settings.server.drain_grace_s
                log.warning("%s: draining, up to %g s for running streams", name, grace)
                service.start_draining()
                nursery.start_soon(_stop_when_drained, service, stopped, grace)
            stopped.set()
            nursery.cancel_scope.cancel()


async def _stop_when_drained(service: SpeechService, stopped: trio.Event, grace: float) -> None:
    with trio.move_on_after(grace):
        await service.wait_all_closed()
    stopped.set()


def warn_about_shipped_token(settings: Settings) -> None:
    if settings.auth.common_token == SHIPPED_TOKEN:
        log.warning(
            "the common token is the publicly known default: set [users] common_auth_token "
            "(or leave it empty and use per-user tokens) before exposing this server"
        )


def run(settings: Settings) -> None:
    """Load the models (start-up errors surface here, before any socket), then serve."""
    warn_about_shipped_token(settings)
    service = SpeechService(settings)
    # One arena for the event loop and one per engine thread (before any thread starts).
    limit_heap_arenas(service.engine_threads + 1)
    service.load_models()

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(serve, service)
            for name, binds in listeners.items():
                what = "" if name == "main" else f"{name} API "
                for bind in binds:
                    # Tests and scripts read these lines to find the ports.
                    print(f"sepia-stt: {what}listening on {bind}", file=sys.stderr, flush=True)

    trio.run(main)
    log.info("stopped")
