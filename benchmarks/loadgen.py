"""Load generator: N concurrent sessions stream real speech into a running server.

Each session connects and sends its ``welcome`` (timed up to the ack); once all
are in, they stream browser-sized frames (32 ms) together, at ``pace`` times
realtime or as fast as the server takes them, then ``audioend``, and wait for
the final.  Sessions are continuous, so every sentence gives a final while
the stream goes on: their arrival times give the lag behind realtime.

Meanwhile two probers run: ``GET /ping`` every 50 ms (a blocked event loop
shows up here first) and, optionally, a fresh session's welcome -> ack every
2 s (how long a new user waits while the server is busy).

    python -m benchmarks.loadgen --url http://127.0.0.1:20741 -n 4 --pace 1.0 --audio FILE
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import h11
import trio

from benchmarks.audio import BYTES_PER_SECOND, load_audio, seconds, speech_for
from benchmarks.stats import summary
from stt.client import BROWSER_FRAME_BYTES, ServerError, SttClient

PING_INTERVAL_S = 0.05
ACK_PROBE_INTERVAL_S = 2.0


@dataclass
class SessionResult:
    """What one session saw; times in seconds."""

    #: ``welcome`` sent -> ack received.
    ack_s: float
    #: First audio frame -> first partial with words.
    first_partial_s: float | None = None
    #: ``audioend`` sent -> the final that answers it.
    final_latency_s: float = 0.0
    #: First audio frame -> each utterance final that came before ``audioend``'s.
    final_arrivals_s: list[float] = field(default_factory=list)
    #: All finals' texts, joined by spaces.
    transcript: str = ""

    def lags(self, final_positions_s: tuple[float, ...], pace: float) -> list[float] | None:
        """How long after its audio was spoken each utterance final arrived.

        ``final_positions_s`` says where in the audio each final became possible
        (:func:`benchmarks.ceiling.reference_run`); None when the session heard a
        different number of utterances, so finals cannot be paired.
        """
        if len(self.final_arrivals_s) != len(final_positions_s):
            return None
        return [
            arrival - position / pace
            for arrival, position in zip(self.final_arrivals_s, final_positions_s, strict=True)
        ]


@dataclass
class LoadResult:
    #: Times realtime; None: as fast as the server takes the audio.
    pace: float | None
    #: Audio of one session.
    audio_s: float
    sessions: list[SessionResult]
    #: Streaming start -> the last session's final.
    wall_s: float
    ping_s: list[float]
    #: Welcome -> ack of the probe sessions opened while the streams ran.
    ack_probe_s: list[float]

    @property
    def throughput(self) -> float:
        """Audio seconds decoded per wall second, all sessions together."""
        return len(self.sessions) * self.audio_s / self.wall_s


async def run_load(
    url: str,
    pcm: bytes,
    *,
    sessions: int,
    pace: float | None,
    options: Mapping[str, Any],
    probe_acks: bool = True,
) -> LoadResult:
    """Open ``sessions`` sessions, stream ``pcm`` on all of them at once, probe meanwhile.

    The welcome probe costs the server a recognizer every 2 s (about 0.1 s of CPU
    for the Korean Vosk model): leave it out where throughput is measured.
    """
    options = {**options, "continuous": True}
    async with AsyncExitStack() as stack:
        clients: list[SttClient] = []
        results: list[SessionResult] = []
        for index in range(sessions):
            client = await stack.enter_async_context(SttClient.connect(url))
            clients.append(client)
            ack_s = await timed_welcome(client, options, client_id=f"bench-{index}")
            results.append(SessionResult(ack_s))
        pings: list[float] = []
        acks: list[float] = []
        start = trio.current_time()
        async with trio.open_nursery() as probes:
            probes.start_soon(probe_ping, url, pings)
            if probe_acks:
                probes.start_soon(probe_welcomes, url, options, acks)
            async with trio.open_nursery() as streams:
                for client, result in zip(clients, results, strict=True):
                    streams.start_soon(stream, client, pcm, pace, result)
            wall_s = trio.current_time() - start
            probes.cancel_scope.cancel()
    return LoadResult(pace, seconds(pcm), results, wall_s, pings, acks)


async def timed_welcome(client: SttClient, options: Mapping[str, Any], *, client_id: str) -> float:
    """Welcome -> ack; every session has its own client id (the server limits sessions per id)."""
    started = trio.current_time()
    await client.welcome(options, client_id=client_id)
    return trio.current_time() - started


async def stream(client: SttClient, pcm: bytes, pace: float | None, result: SessionResult) -> None:
    """Send the audio and ``audioend``; fill ``result`` from what comes back."""
    start = trio.current_time()
    texts: list[str] = []
    final_at = 0.0

    async def collect() -> None:
        nonlocal final_at
        answered = False  # the ``response`` to audioend came: the next final is the last
        while True:
            message = await client.receive()
            elapsed = trio.current_time() - start
            if message["type"] == "error":
                raise ServerError(message)
            if message["type"] == "response":
                answered = True
            elif message["type"] != "result":
                continue
            elif not message["isFinal"]:
                if message["transcript"] and result.first_partial_s is None:
                    result.first_partial_s = elapsed
            else:
                texts.append(message["transcript"])
                if answered:
                    final_at = elapsed
                    return
                result.final_arrivals_s.append(elapsed)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(collect)
        await send_paced(client, pcm, pace, start)
        ended_at = trio.current_time() - start
        await client.end_audio(len(pcm))
    result.final_latency_s = final_at - ended_at
    result.transcript = " ".join(filter(None, texts))


async def send_paced(client: SttClient, pcm: bytes, pace: float | None, start: float) -> None:
    """Each frame leaves when its audio would have been recorded: ``start + end / pace``."""
    for offset in range(0, len(pcm), BROWSER_FRAME_BYTES):
        frame = pcm[offset : offset + BROWSER_FRAME_BYTES]
        if pace:
            await trio.sleep_until(start + (offset + len(frame)) / BYTES_PER_SECOND / pace)
        await client.websocket.send_message(frame)


async def probe_ping(url: str, latencies: list[float]) -> None:
    """``GET /ping`` every 50 ms on a keep-alive connection; appends each latency.

    Plain h11 on a trio stream: a full HTTP client (httpx) spends about 1 ms of
    CPU per request, which this machine's decoders would miss.  Hypercorn closes a
    connection after 1000 requests (50 s of probing): then a new one is opened.
    """
    address = urlsplit(url)
    host = address.hostname or "127.0.0.1"
    request = h11.Request(method="GET", target="/ping", headers=[("Host", host)])
    tick = trio.current_time()
    while True:
        async with await trio.open_tcp_stream(host, address.port or 80) as stream:
            http = h11.Connection(h11.CLIENT)
            while http.our_state is h11.IDLE:
                started = trio.current_time()
                await stream.send_all(http.send(request) + http.send(h11.EndOfMessage()))
                status = await read_response(stream, http)
                if status != 200:
                    raise RuntimeError(f"GET /ping answered {status}")
                latencies.append(trio.current_time() - started)
                if http.our_state is h11.DONE and http.their_state is h11.DONE:
                    http.start_next_cycle()
                tick = max(tick + PING_INTERVAL_S, trio.current_time())
                await trio.sleep_until(tick)


async def read_response(stream: trio.SocketStream, http: h11.Connection) -> int:
    """Read one whole response; its status code."""
    status = 0
    while True:
        event = http.next_event()
        if event is h11.NEED_DATA:
            http.receive_data(await stream.receive_some())
        elif isinstance(event, h11.Response):
            status = event.status_code
        elif isinstance(event, h11.EndOfMessage):
            return status
        elif isinstance(event, h11.ConnectionClosed):
            raise RuntimeError("the server closed the /ping connection")


async def probe_welcomes(url: str, options: Mapping[str, Any], latencies: list[float]) -> None:
    """A new session every 2 s: welcome -> ack, then close it."""
    while True:
        async with SttClient.connect(url) as client:
            latencies.append(await timed_welcome(client, options, client_id="probe"))
        await trio.sleep(ACK_PROBE_INTERVAL_S)


async def sequential_acks(url: str, options: Mapping[str, Any], count: int) -> list[float]:
    """Welcome -> ack of ``count`` sessions opened one after another on an idle server."""
    latencies = []
    for _ in range(count):
        async with SttClient.connect(url) as client:
            latencies.append(await timed_welcome(client, options, client_id="probe"))
    return latencies


def report(result: LoadResult) -> dict[str, Any]:
    """The run's figures (no lag: that needs the in-process reference, see ``run.py``)."""
    sessions = result.sessions
    return {
        "sessions": len(sessions),
        "pace": result.pace,
        "audio_s": result.audio_s,
        "wall_s": result.wall_s,
        "throughput": result.throughput,
        "ack_s": summary([s.ack_s for s in sessions]),
        "ack_probe_s": summary(result.ack_probe_s),
        "first_partial_s": summary([s.first_partial_s for s in sessions if s.first_partial_s]),
        "final_latency_s": summary([s.final_latency_s for s in sessions]),
        "ping_s": summary(result.ping_s),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:20741")
    parser.add_argument("-n", "--sessions", type=int, default=4)
    parser.add_argument("--pace", type=float, default=1.0, help="times realtime; 0: max")
    parser.add_argument("--audio", type=Path, help="16 kHz s16le .raw, or any file sox reads")
    parser.add_argument("--model", help="model name (default: the server's first model)")
    parser.add_argument("--language", help="language code, e.g. ko-KR")
    parser.add_argument("--no-welcome-probe", action="store_true", help="only probe /ping")
    args = parser.parse_args()
    pcm = load_audio(args.audio) if args.audio else speech_for("vosk")
    options = {key: value for key in ("model", "language") if (value := getattr(args, key))}
    result = trio.run(
        lambda: run_load(
            args.url,
            pcm,
            sessions=args.sessions,
            pace=args.pace or None,
            options=options,
            probe_acks=not args.no_welcome_probe,
        )
    )
    print(json.dumps(report(result), indent=2))


if __name__ == "__main__":
    main()
