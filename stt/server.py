"""Start-up: load the models, then serve the app with Hypercorn's Trio worker."""

from __future__ import annotations

import logging
import sys

import trio
from hypercorn.config import Config
from hypercorn.trio import serve as hypercorn_serve

from stt.app import create_app
from stt.service import SpeechService
from stt.settings import Settings

log = logging.getLogger(__name__)


def hypercorn_config(settings: Settings) -> Config:
    config = Config()
    host = settings.server.host
    config.bind = [
        f"[{host}]:{settings.server.port}" if ":" in host else f"{host}:{settings.server.port}"
    ]
    config.loglevel = settings.server.log_level.upper()
    config.accesslog = None
    # Pings are the protocol's own (JSON); Hypercorn's would only add traffic.
    config.websocket_ping_interval = None
    return config


async def serve(
    service: SpeechService,
    *,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve a service whose models are loaded, until cancelled."""
    app = create_app(service)
    await hypercorn_serve(app, hypercorn_config(service.settings), task_status=task_status)


def run(settings: Settings) -> None:
    """Load the models (start-up errors surface here, before any socket), then serve."""
    service = SpeechService(settings)
    service.load_models()

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(serve, service)
            for bind in binds:
                # Tests and scripts read this line to find the port.
                print(f"sepia-stt: listening on {bind}", file=sys.stderr, flush=True)

    trio.run(main)
