"""Live streams before files: a background task takes an engine slot only when it is idle."""

from __future__ import annotations

import trio
import trio.testing

from stt.server.recognition import idle_slot


async def hold(limiter: trio.CapacityLimiter, seconds: float, log: list[str], name: str) -> None:
    async with limiter:
        log.append(f"{name} in")
        await trio.sleep(seconds)
    log.append(f"{name} out")


async def test_background_waits_while_a_stream_waits_and_keeps_one_slot_free(autojump_clock):
    limiter = trio.CapacityLimiter(2)
    log: list[str] = []

    async def background() -> None:
        async with idle_slot(limiter):
            log.append("file in")
            await trio.sleep(1)
        log.append("file out")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(hold, limiter, 2, log, "a")
        await trio.sleep(0.1)
        nursery.start_soon(background)  # one slot is free, but it would be the last one
        await trio.sleep(0.5)
        assert log == ["a in"]
        nursery.start_soon(hold, limiter, 2, log, "b")  # a stream takes it at once
        await trio.sleep(0.1)
        assert log == ["a in", "b in"]
    # The file ran only once both streams were done.
    assert log.index("file in") > log.index("b out")


async def test_a_single_slot_is_shared_when_no_stream_waits(autojump_clock):
    limiter = trio.CapacityLimiter(1)
    async with idle_slot(limiter):
        assert limiter.available_tokens == 0
    assert limiter.available_tokens == 1


async def test_a_stream_queued_behind_another_goes_before_the_file(autojump_clock):
    limiter = trio.CapacityLimiter(2)
    log: list[str] = []

    async def background() -> None:
        async with idle_slot(limiter):
            log.append("file in")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(hold, limiter, 1, log, "a")
        nursery.start_soon(hold, limiter, 1, log, "b")
        await trio.sleep(0.1)
        nursery.start_soon(hold, limiter, 1, log, "c")  # waits for a slot
        nursery.start_soon(background)
    assert log.index("c in") < log.index("file in")
