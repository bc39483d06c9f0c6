"""``sepia-stt`` / ``python -m stt``: start the server."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from stt import __version__
from stt.engines import available_engines
from stt.server import run
from stt.settings import ENV_VAR, Overrides, SettingsError, find_settings_file, load_settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sepia-stt",
        description="SEPIA-compatible realtime speech-to-text server.",
        epilog=f"Settings file: -s, else ${ENV_VAR}, else ~/.sepia-stt-server.conf, "
        "else ./server.conf, else the shipped settings/server.conf.",
    )
    parser.add_argument("-s", "--settings", help="settings file (INI)")
    parser.add_argument("--host", help="address to listen on (overrides [server] host)")
    parser.add_argument("-p", "--port", type=int, help="port (0 picks a free one)")
    parser.add_argument(
        "-e", "--engine", help=f"engine for all models: {', '.join(available_engines())} or dynamic"
    )
    parser.add_argument("-m", "--model", type=Path, help="serve only this model folder")
    parser.add_argument("-l", "--language", help="language of the --model, e.g. en-US")
    parser.add_argument("-d", "--log-level", help="debug, info, warning or error")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    overrides = Overrides(
        host=args.host,
        port=args.port,
        engine=args.engine,
        model_path=args.model,
        language=args.language,
        log_level=args.log_level,
    )
    try:
        settings = load_settings(find_settings_file(args.settings), overrides)
        logging.basicConfig(
            level=settings.server.log_level.upper(),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        run(settings)
    except SettingsError as error:
        print(f"sepia-stt: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0
