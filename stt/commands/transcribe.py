"""``sepia-stt transcribe FILE...``: recordings to text or subtitles, here, without a server.

The model is chosen and loaded from the same settings as the server's (``-s``,
``$SEPIA_STT_SETTINGS``, the user's file, the packaged default), so what a user
configured for the server works here too.  Each result is written next to its input
(``talk.mp3`` -> ``talk.srt``), or to standard output with ``--stdout``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from stt.catalog.registry import with_discovered
from stt.catalog.specs import ModelCatalog
from stt.engines import engine_class
from stt.engines.base import EngineConfig, LoadedModel
from stt.errors import SttError
from stt.files.formats import render, verbose_json
from stt.files.transcribe import transcribe_file
from stt.files.transcript import Transcript
from stt.settings import SettingsError, find_settings_file, load_settings

#: --format -> (OpenAI's response format, file extension).
FORMATS = {"txt": "text", "json": "verbose_json", "srt": "srt", "vtt": "vtt"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sepia-stt transcribe",
        description="Transcribe recordings (WAV, FLAC, OGG/Opus, MP3, M4A, WebM, ...) with the "
        "server's models, without a server. Writes FILE's text or subtitles next to it.",
    )
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE")
    parser.add_argument("-f", "--format", choices=list(FORMATS), default="txt")
    parser.add_argument("-m", "--model", help="model name (sepia-stt models list)")
    parser.add_argument("-l", "--language", help="language, e.g. en or en-US")
    parser.add_argument("--prompt", help="words to expect, for models that take a prompt")
    parser.add_argument("--stdout", action="store_true", help="print to stdout, write no files")
    parser.add_argument("-s", "--settings", help="settings file (INI) that lists the models")
    return parser


def main(argv: Sequence[str]) -> int:
    """Exit status 0, 1 when a file failed, 2 for settings or model errors."""
    args = build_parser().parse_args(argv)
    try:
        model, language = load_model(args.settings, args.model, args.language)
    except (SettingsError, SttError) as error:
        print(f"sepia-stt transcribe: {_message(error)}", file=sys.stderr)
        return 2
    failed = 0
    for path in args.files:
        try:
            transcript = _transcribe(model, path, language, args.prompt)
        except (SttError, OSError) as error:
            print(f"sepia-stt transcribe: {path}: {_message(error)}", file=sys.stderr)
            failed += 1
            continue
        output = _rendered(transcript, args.format)
        if args.stdout:
            sys.stdout.write(output)
            sys.stdout.flush()
        else:
            target = path.with_suffix(f".{args.format}")
            target.write_text(output, encoding="utf-8")
            print(f"{path} -> {target}", file=sys.stderr)
    return 1 if failed else 0


def load_model(
    settings_file: str | None, model: str | None, language: str | None
) -> tuple[LoadedModel, str]:
    """The model the server would pick for this model name or language, loaded."""
    settings = with_discovered(load_settings(find_settings_file(settings_file)))
    catalog = ModelCatalog(settings.models)
    spec = catalog.select(model=model, language=language)
    config = EngineConfig(
        speaker_model=settings.speaker_model,
        log_level=settings.server.log_level,
        threads_per_decode=os.cpu_count() or 1,
    )
    print(f"loading {spec.name} ({spec.engine})", file=sys.stderr)
    return engine_class(spec.engine)(config).load_model(spec), catalog.session_language(
        spec, language
    )


def _transcribe(model: LoadedModel, path: Path, language: str, prompt: str | None) -> Transcript:
    # A bar on a terminal (stderr), nothing in a pipe or a log.
    with tqdm(
        total=None, unit="s", desc=path.name, file=sys.stderr, disable=None, leave=False
    ) as bar:

        def progress(done: float, total: float | None) -> None:
            if total and bar.total is None:
                bar.total = round(total, 1)
            bar.n = round(done, 1)
            bar.refresh()

        return transcribe_file(model, path, language, progress, prompt)


def _rendered(transcript: Transcript, output_format: str) -> str:
    if output_format == "json":
        return json.dumps(verbose_json(transcript, ("segment", "word")), ensure_ascii=False) + "\n"
    return render(transcript, FORMATS[output_format])


def _message(error: Exception) -> str:
    return error.message if isinstance(error, SttError) else str(error)
