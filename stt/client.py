"""A SEPIA STT client on trio-websocket: used by the CLI, the tests and the benchmarks.

It speaks the protocol the way the SEPIA clients do: welcome first, binary
s16le frames, ``audioend``, answers every ``ping`` with a ``pong``.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import trio
from trio_websocket import WebSocketConnection, open_websocket_url

from stt.pcm import BYTES_PER_SAMPLE, DEFAULT_SAMPLE_RATE

#: 512 samples of 16 kHz s16le, what the browser client sends (32 ms).
BROWSER_FRAME_BYTES = 1024


class ServerError(Exception):
    """The server sent an ``error`` message."""

    def __init__(self, message: Mapping[str, Any]) -> None:
        super().__init__(f"{message.get('code')} {message.get('name')}: {message.get('message')}")
        self.code = message.get("code")
        self.name = message.get("name")
        self.message = message


@dataclass
class Transcription:
    """Everything one stream produced, in arrival order."""

    messages: list[dict[str, Any]] = field(default_factory=list)

    @property
    def results(self) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] == "result"]

    @property
    def partials(self) -> list[dict[str, Any]]:
        return [m for m in self.results if not m["isFinal"]]

    @property
    def finals(self) -> list[dict[str, Any]]:
        return [m for m in self.results if m["isFinal"]]

    @property
    def final(self) -> dict[str, Any]:
        """The last final: the one that answers ``audioend``."""
        return self.finals[-1]


class SttClient:
    def __init__(self, websocket: WebSocketConnection) -> None:
        self.websocket = websocket
        self._msg_ids = itertools.count(1)

    @classmethod
    @asynccontextmanager
    async def connect(cls, url: str, *, connect_timeout: float = 60) -> AsyncIterator[SttClient]:
        """``url`` may be ``http(s)://host:port[/base]``; ``/socket`` is added to it."""
        async with open_websocket_url(
            socket_url(url), max_message_size=16 * 2**20, connect_timeout=connect_timeout
        ) as websocket:
            yield cls(websocket)

    async def send_json(self, message: Mapping[str, Any]) -> None:
        await self.websocket.send_message(json.dumps(message))

    async def receive(self) -> dict[str, Any]:
        """The next message that is not a ``ping`` (pings are answered on the way)."""
        while True:
            message = json.loads(await self.websocket.get_message())
            if message.get("type") != "ping":
                return message
            await self.send_json({"type": "pong", "msg_id": message["msg_id"]})

    async def welcome(
        self,
        options: Mapping[str, Any] | None = None,
        *,
        client_id: str = "any",
        token: str = "test1234",
    ) -> dict[str, Any]:
        """Send the welcome and return the ack's active options; raises :class:`ServerError`."""
        ack = await self.welcome_ack(options, client_id=client_id, token=token)
        return ack["info"]["options"]

    async def welcome_ack(
        self,
        options: Mapping[str, Any] | None = None,
        *,
        client_id: str = "any",
        token: str = "test1234",
    ) -> dict[str, Any]:
        """Send the welcome and return the whole ack (for clients that show every message)."""
        await self.send_json(
            {
                "type": "welcome",
                "msg_id": next(self._msg_ids),
                "client_id": client_id,
                "access_token": token,
                "data": dict(options or {}),
            }
        )
        message = await self.receive()
        if message["type"] == "error":
            raise ServerError(message)
        return message

    async def send_audio(
        self, pcm: bytes, *, frame_bytes: int = BROWSER_FRAME_BYTES, pace: float | None = None
    ) -> None:
        """Send PCM in frames; ``pace`` 1.0 is realtime at 16 kHz, None is as fast as possible."""
        start = trio.current_time()
        for offset in range(0, len(pcm), frame_bytes):
            await self.send_frame(pcm[offset : offset + frame_bytes])
            if pace:
                sent_seconds = (offset + frame_bytes) / (BYTES_PER_SAMPLE * DEFAULT_SAMPLE_RATE)
                await trio.sleep_until(start + sent_seconds / pace)

    async def send_frame(self, pcm: bytes) -> None:
        """One binary frame of s16le audio, as a source hands it out (a microphone, a file)."""
        await self.websocket.send_message(pcm)

    async def end_audio(self, byte_length: int = 0) -> int:
        msg_id = next(self._msg_ids)
        await self.send_json(
            {
                "type": "audioend",
                "msg_id": msg_id,
                "data": {"byteLength": byte_length, "bufferOrTimeLimit": False},
            }
        )
        return msg_id

    async def transcribe(
        self,
        pcm: bytes,
        *,
        frame_bytes: int = BROWSER_FRAME_BYTES,
        pace: float | None = None,
    ) -> Transcription:
        """Stream ``pcm`` (after :meth:`welcome`), end it and collect up to the last final."""
        transcription = Transcription()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.collect, transcription.messages.append)
            await self.send_audio(pcm, frame_bytes=frame_bytes, pace=pace)
            await self.end_audio(len(pcm))
        return transcription

    async def collect(self, on_message: Callable[[dict[str, Any]], object]) -> None:
        """Hand every message to ``on_message`` up to the final that answers ``audioend``.

        An ``error`` is handed over too, then raised as :class:`ServerError`: whatever
        shows the messages shows the error the way it came.
        """
        seen_response = False
        while True:
            message = await self.receive()
            on_message(message)
            if message["type"] == "error":
                raise ServerError(message)
            if message["type"] == "response":
                seen_response = True
            elif seen_response and message["type"] == "result" and message["isFinal"]:
                return


def socket_url(url: str) -> str:
    """``http://host:20741`` -> ``ws://host:20741/socket``; ws URLs are kept as they are."""
    if url.startswith(("ws://", "wss://")):
        return url
    return "ws" + url.removeprefix("http").rstrip("/") + "/socket"
