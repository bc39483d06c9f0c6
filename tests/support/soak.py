"""A bounded soak of a running server: many sessions behaving badly at once.

Run alone: ``python -m tests.support.soak --url http://127.0.0.1:20741 --rounds 5 --sessions 8``
(``nox -s soak``).  Each round starts ``sessions`` clients of four kinds, at random:

* *normal*: streams speech at 10x realtime, ``audioend``, waits for the final;
* *vanishing*: streams part of the audio and drops the connection mid-stream;
* *slow reader*: streams everything and never reads a result, then goes away;
* *flood*: sends 1 s frames as fast as the socket takes them for a moment, then leaves.

It stops by itself; it only ever talks to the URL it is given (use loopback).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import trio
from trio_websocket import (
    ConnectionClosed,
    HandshakeError,
    WebSocketConnection,
    wrap_client_stream,
)

from stt.client import SttClient, socket_url

KINDS = ("normal", "vanishing", "slow reader", "flood")
_WELCOME = {"type": "welcome", "msg_id": 1, "access_token": "test1234", "data": {}}


@dataclass
class SoakReport:
    finals: int = 0
    sessions: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)


async def soak(
    url: str,
    speech: bytes,
    *,
    rounds: int,
    sessions: int,
    options: dict,
    seed: int = 1,
) -> SoakReport:
    report = SoakReport()
    rng = random.Random(seed)
    for _ in range(rounds):
        async with trio.open_nursery() as nursery:
            for _ in range(sessions):
                kind = rng.choice(KINDS)
                report.sessions[kind] += 1
                nursery.start_soon(_client, kind, url, speech, options, rng.random(), report)
    return report


async def _client(
    kind: str, url: str, speech: bytes, options: dict, fraction: float, report: SoakReport
) -> None:
    try:
        with trio.fail_after(60):
            if kind == "normal":
                async with SttClient.connect(url) as client:
                    await client.welcome(options)
                    result = await client.transcribe(speech, pace=10.0)
                    report.finals += result.final["isFinal"]
            elif kind == "vanishing":
                await _vanish(url, speech[: int(len(speech) * fraction) & ~1], options)
            elif kind == "slow reader":
                await _vanish(url, speech, options, end_audio=True)
            else:
                await _flood(url, options)
    except (ConnectionClosed, HandshakeError, trio.TooSlowError, OSError) as error:
        report.failures.append(f"{kind}: {type(error).__name__}: {error}")


@asynccontextmanager
async def _raw_connection(url: str) -> AsyncIterator[tuple[WebSocketConnection, trio.SocketStream]]:
    """A WebSocket over a TCP stream we hold, so the client can vanish without a goodbye."""
    target = urlsplit(socket_url(url))
    assert target.hostname is not None and target.port is not None
    stream = await trio.open_tcp_stream(target.hostname, target.port)
    async with trio.open_nursery() as nursery:
        websocket = await wrap_client_stream(nursery, stream, target.hostname, target.path)
        try:
            yield websocket, stream
        finally:
            await stream.aclose()
            nursery.cancel_scope.cancel()


async def _vanish(url: str, audio: bytes, options: dict, *, end_audio: bool = False) -> None:
    """Send, never read a result, and drop the connection without a close handshake."""
    async with _raw_connection(url) as (websocket, _stream):
        await websocket.send_message(json.dumps({**_WELCOME, "data": options}))
        for offset in range(0, len(audio), 1024):
            await websocket.send_message(audio[offset : offset + 1024])
        if end_audio:
            await websocket.send_message(json.dumps({"type": "audioend", "msg_id": 2}))
        await trio.sleep(0.2)


async def _flood(url: str, options: dict) -> None:
    """1 s frames as fast as the socket takes them, for a second; then gone."""

    async def send_forever(websocket: WebSocketConnection) -> None:
        with contextlib.suppress(
            ConnectionClosed, trio.BrokenResourceError, trio.ClosedResourceError
        ):
            while True:
                await websocket.send_message(bytes(32000))

    async with _raw_connection(url) as (websocket, stream), trio.open_nursery() as nursery:
        await websocket.send_message(json.dumps({**_WELCOME, "data": options}))
        nursery.start_soon(send_forever, websocket)
        await trio.sleep(1.0)
        await stream.aclose()


def main() -> None:
    from tests.support.audio import silence, speak

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:20741")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--language", default="ko-KR")
    args = parser.parse_args()
    speech = speak("안녕하세요 오늘 날씨가 좋습니다") + silence(0.5)
    report = trio.run(
        lambda: soak(
            args.url,
            speech,
            rounds=args.rounds,
            sessions=args.sessions,
            options={"language": args.language},
        )
    )
    print(f"sessions: {dict(report.sessions)}; finals: {report.finals}")
    for failure in report.failures:
        print("failure:", failure)


if __name__ == "__main__":
    main()
