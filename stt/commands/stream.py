"""``sepia-stt stream``: a file or the microphone through a server, transcripts on stdout.

A client of the server's own protocol (SEPIA's WebSocket, :class:`stt.client.SttClient`):
what a user runs to try a server, or to pipe finals into a script. It asks for
continuous results, so every utterance gets its final as soon as it ends.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import signal
import socket
import ssl
import sys
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import closing, suppress
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol, TextIO
from urllib.parse import urlsplit

import trio
from trio_websocket import ConnectionClosed, ConnectionRejected, ConnectionTimeout, HandshakeError

from stt.client import ServerError, SttClient
from stt.errors import SttError
from stt.pcm import BYTES_PER_SAMPLE, DEFAULT_SAMPLE_RATE

if TYPE_CHECKING:
    from stt.files.decode import AudioFile

PROG = "sepia-stt stream"
TOKEN_ENV = "SEPIA_STT_TOKEN"
#: The token of the default settings (``test1234``): a fresh local server takes it.
DEFAULT_TOKEN = "test1234"
SCHEMES = ("http", "https", "ws", "wss")
BYTES_PER_SECOND = BYTES_PER_SAMPLE * DEFAULT_SAMPLE_RATE
#: About 0.1 s of audio per frame: small enough for live partials, few enough thread hops.
CHUNK_SAMPLES = DEFAULT_SAMPLE_RATE // 10
CHUNK_BYTES = CHUNK_SAMPLES * BYTES_PER_SAMPLE
#: Microphone blocks held while the server is not taking audio (5 s); beyond it they are dropped.
MIC_BUFFER_BLOCKS = 50
#: Connection and WebSocket handshake; longer is a wrong address (or https:// without TLS).
CONNECT_TIMEOUT_S = 15
#: Of an HTTP refusal's body, at most this much goes into the one-line message.
SHOWN_BODY_CHARS = 200
#: Go to the start of the line and clear it: a partial is rewritten in place.
CLEAR_LINE = "\r\x1b[K"
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
MIC_HINT = (
    "--mic needs the sounddevice package and the PortAudio library ({reason}): "
    "pip install sounddevice (or sepia-stt[mic]), and PortAudio from the system "
    "(Debian/Ubuntu: apt-get install libportaudio2; macOS: brew install portaudio)"
)


class StreamError(Exception):
    """A failure this command explains itself, in one line."""


class MicUnavailable(Exception):
    """sounddevice, or the PortAudio library under it, is not installed."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Stream an audio file or the microphone to a SEPIA STT server and print "
        "the transcripts: on a terminal partials in place and finals line by line; "
        "otherwise finals only, one line each.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "file", nargs="?", type=Path, help="audio file: WAV, FLAC, OGG, MP3, M4A, ..."
    )
    source.add_argument(
        "--mic", action="store_true", help="the default microphone until Ctrl-C (sounddevice)"
    )
    parser.add_argument("--url", required=True, help="the server, e.g. http://localhost:20741")
    parser.add_argument(
        "--token", help=f"access token (default: ${TOKEN_ENV}, else {DEFAULT_TOKEN})"
    )
    parser.add_argument("--client-id", default="any", help="client id (default: any)")
    parser.add_argument("--language", help="language of the speech, e.g. en-US")
    parser.add_argument("--model", help="model name, as the server's /settings lists it")
    parser.add_argument(
        "--fast", action="store_true", help="send a file as fast as the server takes it"
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print every server message (but pings) as one JSON line",
    )
    return parser


def main(argv: Sequence[str]) -> int:
    """Exit status 0, 1 for a failure (one line on stderr), 2 for usage, 130 for a second ^C."""
    args = build_parser().parse_args(argv)
    try:
        sounddevice = load_sounddevice() if args.mic else None
    except MicUnavailable as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return EXIT_USAGE
    output = choose_output(args.json, sys.stdout)
    try:
        check_url(args.url)
        trio.run(stream, args, output, sounddevice)
    except BaseException as raised:
        output.close()
        failure = primary(raised)
        if isinstance(failure, KeyboardInterrupt):
            return EXIT_INTERRUPTED
        message = failure_message(failure, args)
        if message is None:
            raise
        print(f"{PROG}: {message}", file=sys.stderr)
        return EXIT_FAILED
    output.close()
    return 0


# -- the stream --------------------------------------------------------------------------------


async def stream(args: argparse.Namespace, output: Output, sounddevice: ModuleType | None) -> None:
    """Open the source first (a bad file fails before any connection), then stream it."""
    source = await open_source(args, sounddevice)
    with closing(source):
        async with SttClient.connect(args.url, connect_timeout=CONNECT_TIMEOUT_S) as client:
            await greet(client, args, output)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(client.collect, output.show)
                sent = await send_until_stopped(client, source)
                source.close()  # the microphone stops here, not after the final
                await client.end_audio(sent)


async def greet(client: SttClient, args: argparse.Namespace, output: Output) -> None:
    """The welcome; a refusal is shown like any message (``--json``), then raised."""
    options: dict[str, Any] = {"continuous": True, "interimResults": output.wants_partials}
    if args.language:
        options["language"] = args.language
    if args.model:
        options["model"] = args.model
    token = args.token or os.environ.get(TOKEN_ENV) or DEFAULT_TOKEN
    try:
        ack = await client.welcome_ack(options, client_id=args.client_id, token=token)
    except ServerError as error:
        output.show(dict(error.message))
        raise
    output.show(ack)


async def send_until_stopped(client: SttClient, source: AudioSource) -> int:
    """Send the source's audio until it ends or Ctrl-C stops it; the bytes sent.

    Ctrl-C only stops the audio: the caller still ends it and waits for the final.
    """
    sent = 0
    async with trio.open_nursery() as nursery:
        await nursery.start(cancel_on_interrupt, nursery.cancel_scope)
        start = trio.current_time()
        while chunk := await source.read():
            await client.send_frame(chunk)
            sent += len(chunk)
            if source.paced:
                await trio.sleep_until(start + sent / BYTES_PER_SECOND)
        nursery.cancel_scope.cancel()
    return sent


async def cancel_on_interrupt(
    scope: trio.CancelScope, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """The first SIGINT cancels ``scope``; after it, a second one interrupts as usual."""
    with trio.open_signal_receiver(signal.SIGINT) as interrupts:
        task_status.started()
        async for _ in interrupts:
            scope.cancel()
            return


# -- sources: 16 kHz mono s16le in ~0.1 s chunks, b"" at the end ------------------------------


class AudioSource(Protocol):
    #: Whether the sender keeps to realtime (a file); a microphone paces itself.
    paced: bool

    async def read(self) -> bytes: ...

    def close(self) -> None: ...


async def open_source(args: argparse.Namespace, sounddevice: ModuleType | None) -> AudioSource:
    if sounddevice is not None:
        return MicSource(sounddevice)
    return await FileSource.open(args.file, paced=not args.fast)


class FileSource:
    """A file decoded by PyAV in worker threads, a chunk per call: the event loop never waits."""

    def __init__(self, audio: AudioFile, *, paced: bool) -> None:
        self._audio = audio
        self._closed = False
        self.paced = paced

    @classmethod
    async def open(cls, path: Path, *, paced: bool) -> FileSource:
        # PyAV loads FFmpeg's libraries: only when a file is streamed, not at every sepia-stt.
        from stt.files.decode import AudioFile

        if not path.is_file():
            raise StreamError(f"{path}: no such file")
        audio = await trio.to_thread.run_sync(AudioFile, path, DEFAULT_SAMPLE_RATE)
        return cls(audio, paced=paced)

    async def read(self) -> bytes:
        return await trio.to_thread.run_sync(self._audio.read, CHUNK_BYTES)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._audio.close()


def load_sounddevice() -> ModuleType:
    """sounddevice is optional (``sepia-stt[mic]``), and it needs PortAudio from the system."""
    try:
        return importlib.import_module("sounddevice")
    except (ImportError, OSError) as error:  # OSError: "PortAudio library not found"
        raise MicUnavailable(MIC_HINT.format(reason=error)) from error


class MicSource:
    """The default microphone; PortAudio's thread hands each block over to Trio's."""

    paced = False

    def __init__(self, sounddevice: ModuleType) -> None:
        self._send, self._receive = trio.open_memory_channel[bytes](MIC_BUFFER_BLOCKS)
        self._token = trio.lowlevel.current_trio_token()
        self._closed = False
        try:
            self._stream = sounddevice.RawInputStream(
                samplerate=DEFAULT_SAMPLE_RATE,
                channels=1,
                dtype="int16",
                blocksize=CHUNK_SAMPLES,
                callback=self._captured,
            )
            self._stream.start()
        except sounddevice.PortAudioError as error:
            raise StreamError(f"cannot open the microphone: {error}") from error

    def _captured(self, indata: Any, frames: int, time: Any, status: Any) -> None:
        """In PortAudio's thread: never block it, never touch Trio's state from it."""
        with suppress(trio.RunFinishedError):  # a last block after the run: nobody wants it
            self._token.run_sync_soon(self._put, bytes(indata))

    def _put(self, block: bytes) -> None:
        # Full: the server is not taking audio; closed: the stream is over. Drop the block.
        with suppress(trio.WouldBlock, trio.ClosedResourceError):
            self._send.send_nowait(block)

    async def read(self) -> bytes:
        return await self._receive.receive()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._stream.stop()
            self._stream.close()
            self._send.close()


# -- output ------------------------------------------------------------------------------------


class Output(Protocol):
    #: Whether partials are shown, so whether the server should send them at all.
    wants_partials: bool

    def show(self, message: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


def choose_output(as_json: bool, stdout: TextIO) -> Output:
    if as_json:
        return JsonOutput(stdout)
    if stdout.isatty():
        return TerminalOutput(stdout)
    return PlainOutput(stdout)


class JsonOutput:
    """Every message as it came, one per line: for scripts that want it all."""

    wants_partials = True

    def __init__(self, stdout: TextIO) -> None:
        self._stdout = stdout

    def show(self, message: dict[str, Any]) -> None:
        self._stdout.write(json.dumps(message, ensure_ascii=False) + "\n")
        self._stdout.flush()

    def close(self) -> None:
        pass


class PlainOutput:
    """Finals only, plain lines, flushed at once: what a pipe or a file wants."""

    wants_partials = False

    def __init__(self, stdout: TextIO) -> None:
        self._stdout = stdout

    def show(self, message: dict[str, Any]) -> None:
        text = final_text(message)
        if text:
            self._stdout.write(text + "\n")
            self._stdout.flush()

    def close(self) -> None:
        pass


class TerminalOutput:
    """The partial rewritten in place on one line; each final on a line of its own."""

    wants_partials = True

    def __init__(self, stdout: TextIO) -> None:
        self._stdout = stdout
        self._partial_shown = False

    def show(self, message: dict[str, Any]) -> None:
        if message.get("type") != "result":
            return
        text = str(message.get("transcript") or "")
        final = bool(message.get("isFinal"))
        if not text:
            line = ""
        elif final:
            line = text + "\n"
        else:
            # A partial that wrapped could not be cleared: only its end is shown.
            line = fit_tail(text, shutil.get_terminal_size().columns - 1)
        if line or self._partial_shown:
            self._write(CLEAR_LINE + line)
        self._partial_shown = bool(line) and not final

    def close(self) -> None:
        """A partial left on the line was never a result: clear it."""
        if self._partial_shown:
            self._write(CLEAR_LINE)
            self._partial_shown = False

    def _write(self, text: str) -> None:
        self._stdout.write(text)
        self._stdout.flush()


def final_text(message: dict[str, Any]) -> str:
    """A final's transcript; "" for anything else (and for a final that heard nothing)."""
    if message.get("type") == "result" and message.get("isFinal"):
        return str(message.get("transcript") or "")
    return ""


def fit_tail(text: str, columns: int) -> str:
    """The end of ``text`` that fits in ``columns`` cells (Hangul and other wide letters: 2)."""
    used = 0
    for index in range(len(text) - 1, -1, -1):
        used += 2 if unicodedata.east_asian_width(text[index]) in ("W", "F") else 1
        if used > columns:
            return text[index + 1 :]
    return text


# -- failures ----------------------------------------------------------------------------------


def check_url(url: str) -> None:
    """A typo in the URL fails here, in words, rather than deep in the WebSocket library."""
    try:
        parts = urlsplit(url)
        _ = parts.port  # a port that is not a number raises ValueError
    except ValueError as error:
        raise StreamError(f"not a server URL: {url} ({error})") from error
    if parts.scheme not in SCHEMES or not parts.hostname:
        raise StreamError(f"not a server URL: {url} (expected e.g. http://localhost:20741)")


def primary(error: BaseException) -> BaseException:
    """The one exception to report: the server's own error beats the closed socket it causes."""
    leaves = list(_leaves(error))
    wanted = (KeyboardInterrupt, ServerError)
    return next((leaf for leaf in leaves if isinstance(leaf, wanted)), leaves[0])


def _leaves(error: BaseException) -> Iterator[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            yield from _leaves(inner)
    else:
        yield error


def failure_message(error: BaseException, args: argparse.Namespace) -> str | None:
    """One line for an expected failure; None for a bug (its traceback is worth seeing)."""
    if isinstance(error, ServerError | StreamError):
        return str(error)
    if isinstance(error, SttError):  # the file: UnsupportedMedia, InvalidAudio
        return f"{args.file}: {error.message}"
    if isinstance(error, ConnectionRejected):
        why = f"HTTP {error.status_code} {body_line(error.body)}".rstrip()
        return f"{args.url} refused the connection: {why}"
    if isinstance(error, ConnectionTimeout):
        return f"cannot connect to {args.url}: no answer within {CONNECT_TIMEOUT_S} s"
    if isinstance(error, HandshakeError | OSError | trio.BrokenResourceError):
        return f"cannot connect to {args.url}: {connect_reason(error)}"
    if isinstance(error, ConnectionClosed):
        reason = error.reason
        why = f"{reason.code} {reason.name} {reason.reason or ''}".rstrip() if reason else ""
        return f"the server closed the connection ({why})" if why else str(error)
    return None


def connect_reason(error: BaseException) -> str:
    """The innermost cause in the system's words ("Connection refused"), not a summary of it."""
    while error.__cause__ is not None:
        error = error.__cause__
    leaf = next(_leaves(error))
    if isinstance(leaf, ssl.SSLError | socket.gaierror) or not isinstance(leaf, OSError):
        return str(getattr(leaf, "strerror", None) or leaf) or type(leaf).__name__
    return os.strerror(leaf.errno) if leaf.errno else str(leaf)


def body_line(body: bytes | None) -> str:
    """A refusal's text in one line (``ServerBusy: ...``); an HTML error page says nothing."""
    text = " ".join((body or b"").decode("utf-8", "replace").split())
    return "" if text.startswith("<") else text[:SHOWN_BODY_CHARS]
