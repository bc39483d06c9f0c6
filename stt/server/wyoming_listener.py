"""Home Assistant's Wyoming protocol on Trio: a TCP listener whose connections the same
``Connection`` carries (admission, engine slots, drain, metrics), with the rules of
``stt.wyoming.session``.

Wyoming frames an event as a JSON line, then optional data and payload bytes; the
``wyoming`` package reads and writes them (``async_read_event``/``async_write_event``)
through the small reader and writer here, which give it what it awaits of asyncio's
streams on top of a Trio stream.  The protocol has no authentication: the listener is
on loopback unless ``[wyoming] host`` says otherwise, and every connection counts like
a common-token session of its address.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Iterable

import trio
from wyoming.error import Error
from wyoming.event import Event, async_read_event, async_write_event
from wyoming.info import AsrModel, AsrProgram, Attribution, Info

from stt import __version__
from stt.catalog.specs import short_code
from stt.server.admission import Refused
from stt.server.connection import ClientGone, Connection
from stt.server.service import SpeechService
from stt.wyoming.session import WyomingSession

log = logging.getLogger(__name__)

#: A Wyoming header line longer than this is no header (events are small JSON).
MAX_LINE_BYTES = 64 * 1024
READ_BYTES = 64 * 1024
ATTRIBUTION = Attribution(name="SEPIA STT Server (Trio)", url="https://github.com/SEPIA-Framework")


class TrioStreamReader:
    """``readline`` and ``readexactly`` over a Trio stream, as ``async_read_event`` uses them."""

    def __init__(self, stream: trio.abc.ReceiveStream, max_payload: int) -> None:
        self._stream = stream
        self._buffer = bytearray()
        self._max_payload = max_payload

    async def _fill(self) -> None:
        data = await self._stream.receive_some(READ_BYTES)
        if not data:
            raise ClientGone
        self._buffer += data

    async def readline(self) -> bytes:
        while (end := self._buffer.find(b"\n")) < 0:
            if len(self._buffer) > MAX_LINE_BYTES:
                raise ValueError("event header line too long")  # read_event: end of the events
            await self._fill()
        line = bytes(self._buffer[: end + 1])
        del self._buffer[: end + 1]
        return line

    async def readexactly(self, size: int) -> bytes:
        if size > self._max_payload:
            raise ValueError(f"event payload of {size} bytes is too large")
        while len(self._buffer) < size:
            await self._fill()
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data


class TrioStreamWriter:
    """``write``, ``writelines`` and ``drain`` over a Trio stream, for ``async_write_event``."""

    def __init__(self, stream: trio.abc.SendStream) -> None:
        self._stream = stream
        self._pending = bytearray()

    def write(self, data: bytes) -> None:
        self._pending += data

    def writelines(self, lines: Iterable[bytes]) -> None:
        for line in lines:
            self._pending += line

    async def drain(self) -> None:
        data, self._pending = bytes(self._pending), bytearray()
        await self._stream.send_all(data)


class WyomingSocket:
    """A Wyoming TCP connection as the ``MessageSocket`` a ``Connection`` drives: events as
    ``{"type", "data"}`` text, an ``audio-chunk`` as its PCM payload."""

    def __init__(self, stream: trio.SocketStream, max_payload: int) -> None:
        self._stream = stream
        self._reader = TrioStreamReader(stream, max_payload)
        self._writer = TrioStreamWriter(stream)

    async def accept(self) -> None:
        pass

    async def receive(self) -> str | bytes | None:
        event = await async_read_event(self._reader)  # type: ignore[arg-type]
        if event is None:  # the end of the stream, or no event there
            raise ClientGone
        if event.type == "audio-chunk":
            return event.payload or None
        return json.dumps({"type": event.type, "data": event.data})

    async def send(self, data: str) -> None:
        message = json.loads(data)
        await self.send_event(Event(type=message["type"], data=message.get("data") or {}))

    async def send_event(self, event: Event) -> None:
        try:
            await async_write_event(event, self._writer)  # type: ignore[arg-type]
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise ClientGone from None

    async def close(self, code: int, reason: str = "") -> None:
        await self._stream.aclose()


def describe(service: SpeechService) -> Info:
    """``info``: one ASR program with the served models and their languages."""
    models = [
        AsrModel(
            name=spec.name,
            description=f"{spec.name} ({spec.engine})",
            attribution=ATTRIBUTION,
            installed=True,
            version=None,
            languages=list(
                dict.fromkeys(short_code(code) for code in (spec.language, *spec.other_languages))
            ),
        )
        for spec in service.settings.models
    ]
    program = AsrProgram(
        name="sepia-stt",
        description="SEPIA-compatible realtime speech-to-text server (Vosk, Whisper)",
        attribution=ATTRIBUTION,
        installed=True,
        version=__version__,
        models=models,
        supports_transcript_streaming=True,
    )
    return Info(asr=[program])


def wyoming_handler(
    service: SpeechService, new_session_id: Callable[[], str]
) -> Callable[[trio.SocketStream], Awaitable[None]]:
    """The handler ``trio.serve_tcp`` runs for each connection."""
    server = service.settings.server
    info = describe(service)

    async def handle(stream: trio.SocketStream) -> None:
        # A handler that raises would stop trio.serve_tcp, and with it the listener: one
        # connection's trouble (a peer gone before it is served, a reset) ends that one only.
        try:
            await serve_connection(stream)
        except Exception:
            log.exception("wyoming connection failed")
        finally:
            with trio.CancelScope(shield=True):
                await stream.aclose()

    async def serve_connection(stream: trio.SocketStream) -> None:
        try:
            address = str(stream.socket.getpeername()[0])
        except OSError:  # gone before it could be served
            return
        socket = WyomingSocket(stream, server.max_frame_bytes)
        try:
            place = service.open_connection(address, trio.current_time())
        except Refused as refusal:
            with trio.move_on_after(1):
                await socket.send_event(Error(text=refusal.message, code="ServerBusy").event())
            return
        rules = WyomingSession(
            info=info,
            timeout_s=server.timeout_s,
            now=trio.current_time(),
            max_session_s=server.max_session_s,
            max_frame_bytes=server.max_frame_bytes,
        )
        await Connection(socket, service, new_session_id(), place, rules).run()

    return handle
