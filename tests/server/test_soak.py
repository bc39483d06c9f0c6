"""A small soak in CI: bad clients at scale leave no sessions, threads or memory behind."""

from __future__ import annotations

import httpx
import trio

from tests.support.running import RunningServer, gauge, process_status, write_settings
from tests.support.soak import soak

#: RSS may settle a little above where it started (allocator arenas); this much is a leak.
RSS_GROWTH_LIMIT = 1.25


async def test_bad_clients_leave_nothing_behind(tmp_path, korean_speech):
    server = RunningServer(write_settings(tmp_path, timeout_s=3, heartbeat_s=1))
    try:
        options = {"language": "ko-KR"}
        # A first round warms up what stays for good (thread pool, allocator arenas).
        await soak(server.http_url, korean_speech, rounds=1, sessions=6, options=options)
        await settle(server)
        before = process_status(server.process.pid)

        report = await soak(
            server.http_url, korean_speech, rounds=2, sessions=8, options=options, seed=2
        )
        await settle(server)
        after = process_status(server.process.pid)

        assert report.failures == []
        assert report.finals == report.sessions["normal"] > 0
        # Idle worker threads leave Trio's thread cache after 10 s; leaked ones never do.
        with trio.move_on_after(20):
            while process_status(server.process.pid)["Threads"] > before["Threads"] + 2:
                await trio.sleep(0.5)
        assert process_status(server.process.pid)["Threads"] <= before["Threads"] + 2
        assert after["VmRSS"] <= before["VmRSS"] * RSS_GROWTH_LIMIT, (before, after)
        async with httpx.AsyncClient(base_url=server.http_url) as http:
            assert (await http.get("/ping")).status_code == 200
    finally:
        server.stop()


async def settle(server: RunningServer) -> None:
    """Wait until the server has closed every session (vanished clients are found by timeout)."""
    with trio.fail_after(30):
        while await gauge(server, "sepia_stt_active_sessions"):
            await trio.sleep(0.2)
    await trio.sleep(0.5)
