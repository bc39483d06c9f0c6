"""One connection's Trio tasks in process: an in-memory socket, the byte-counting engine,
and Trio's virtual clock, so seconds of deadlines take milliseconds.

The clock jumps only after 50 ms of real idleness: an engine call in a worker thread
takes less than that, so virtual time does not race ahead while a thread works.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from stt.catalog.specs import ModelSpec
from stt.server.app import sepia_rules
from stt.server.connection import Connection
from stt.server.recognition import AudioBudget
from stt.server.service import SpeechService
from stt.settings import AuthSettings, ServerSettings, Settings

TOKEN = "secret"
FRAME = b"\x01\x00" * 1600  # 0.1 s at 16 kHz


class MemorySocket:
    """The client end of a connection: what the server sent, and whether it still reads."""

    def __init__(self) -> None:
        self._to_server, self._from_client = trio.open_memory_channel[str | bytes](100)
        self.sent: list[dict[str, Any]] = []
        self.closed: tuple[int, str] | None = None
        self.reading = True
        self.sent_something = trio.Event()

    async def accept(self) -> None:
        pass

    async def receive(self) -> str | bytes | None:
        return await self._from_client.receive()

    async def send(self, data: str) -> None:
        if not self.reading:
            await trio.sleep_forever()
        self.sent.append(json.loads(data))
        self.sent_something.set()
        self.sent_something = trio.Event()

    async def close(self, code: int, reason: str = "") -> None:
        self.closed = (code, reason)

    async def client_sends(self, message: dict[str, Any] | bytes) -> None:
        await self._to_server.send(message if isinstance(message, bytes) else json.dumps(message))

    async def next_message(self, kind: str) -> dict[str, Any]:
        """Wait for the next message of ``kind`` the server sent after those already taken."""
        with trio.fail_after(30):  # virtual seconds: a hang fails instead of waiting forever
            while True:
                for index, message in enumerate(self.sent):
                    if message["type"] == kind:
                        del self.sent[: index + 1]
                        return message
                await self.sent_something.wait()

    def kinds(self) -> list[str]:
        return [m["type"] for m in self.sent]


def welcome(**data: Any) -> dict[str, Any]:
    return {"type": "welcome", "msg_id": 1, "client_id": "any", "access_token": TOKEN, "data": data}


@pytest.fixture
def clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0.05)


def make_service(**server: Any) -> SpeechService:
    """The service as the server builds it, serving the byte-counting engine."""
    spec = ModelSpec(
        name="bytes", path=Path("."), language="en-US", engine="test", properties={"engine": "test"}
    )
    settings = Settings(
        source=None,
        server=ServerSettings(**{"auth_failure_delay_s": 0.0, **server}),
        auth=AuthSettings(common_token=TOKEN),
        models=(spec,),
    )
    service = SpeechService(settings)
    service.load_models()
    return service


async def run_connection(
    nursery: trio.Nursery, service: SpeechService
) -> tuple[MemorySocket, trio.Event]:
    """Start a connection as the app would; the event is set when its tasks have ended."""
    socket = MemorySocket()
    place = service.open_connection("192.0.2.7", trio.current_time())
    ended = trio.Event()

    async def run() -> None:
        await Connection(socket, service, "1-0", place, sepia_rules(service)).run()
        ended.set()

    nursery.start_soon(run)
    return socket, ended


async def test_a_stream_gets_its_partials_and_one_final_and_frees_its_place_at_once(clock):
    service = make_service()
    async with trio.open_nursery() as nursery:
        socket, ended = await run_connection(nursery, service)
        await socket.client_sends(welcome())
        assert (await socket.next_message("welcome"))["info"]["options"]["model"] == "bytes"
        assert service.admission.sessions == 1
        for _ in range(3):
            await socket.client_sends(FRAME)
        await socket.client_sends({"type": "audioend", "msg_id": 2})
        final = await socket.next_message("result")
        while not final["isFinal"]:
            final = await socket.next_message("result")
        assert final["transcript"] == f"[processed bytes: {3 * len(FRAME)}]"
        # The client keeps its socket open, but its session and place are over.
        with trio.fail_after(1):
            while service.admission.sessions or service.admission.pending:
                await trio.sleep(0.01)
        assert not ended.is_set()
        nursery.cancel_scope.cancel()


async def test_no_welcome_closes_the_connection_after_the_welcome_timeout(clock):
    service = make_service(welcome_timeout_s=5.0)
    async with trio.open_nursery() as nursery:
        started = trio.current_time()
        socket, ended = await run_connection(nursery, service)
        await ended.wait()
    waited = trio.current_time() - started
    assert 5.0 < waited <= 6.0
    error = socket.sent[-1]
    assert (error["type"], error["code"], error["name"]) == ("error", 408, "TimeoutMessage")
    assert socket.closed is not None
    assert service.admission.pending == 0


async def test_an_idle_session_is_pinged_then_closed_after_timeout_s(clock):
    service = make_service(heartbeat_s=4.0, timeout_s=10.0)
    async with trio.open_nursery() as nursery:
        socket, ended = await run_connection(nursery, service)
        await socket.client_sends(welcome())
        await socket.next_message("welcome")
        opened = trio.current_time()
        await ended.wait()
    idle = trio.current_time() - opened
    assert 10.0 < idle <= 12.5
    assert socket.kinds() == ["ping", "ping", "error"]
    assert socket.sent[-1]["code"] == 408
    assert socket.closed is not None and socket.closed[0] == 1013
    assert service.admission.sessions == 0


async def test_a_client_that_stops_reading_is_disconnected_after_timeout_s(clock):
    service = make_service(timeout_s=6.0, heartbeat_s=100.0)
    async with trio.open_nursery() as nursery:
        socket, ended = await run_connection(nursery, service)
        await socket.client_sends(welcome())
        await socket.next_message("welcome")
        socket.reading = False
        stopped = trio.current_time()
        await socket.client_sends(FRAME)
        await ended.wait()
    assert 6.0 <= trio.current_time() - stopped <= 7.0
    outcomes = service.metrics.exposition().decode()
    assert 'sepia_stt_sessions_total{outcome="client not reading",protocol="sepia"} 1.0' in outcomes
    assert service.admission.sessions == 0


async def test_draining_lets_a_running_stream_reach_its_final_then_closes(clock):
    service = make_service()
    async with trio.open_nursery() as nursery:
        socket, ended = await run_connection(nursery, service)
        await socket.client_sends(welcome())
        await socket.next_message("welcome")
        await socket.client_sends(FRAME)
        await socket.next_message("result")
        service.start_draining()
        await trio.sleep(1)
        assert not ended.is_set(), "a running stream was cut off by the drain"
        await socket.client_sends({"type": "audioend", "msg_id": 2})
        await ended.wait()
    finals = [m for m in socket.sent if m["type"] == "result" and m["isFinal"]]
    assert [m["transcript"] for m in finals] == [f"[processed bytes: {len(FRAME)}]"]
    assert socket.closed is not None and socket.closed[0] == 1001


async def test_audio_budget_makes_the_receiver_wait_until_audio_is_decoded(clock):
    budget = AudioBudget(limit=1000)
    await budget.spend(600)
    spent = trio.Event()

    async def spend_more() -> None:
        await budget.spend(600)
        spent.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(spend_more)
        await trio.sleep(10)
        assert not spent.is_set(), "went over the budget"
        budget.refund(600)
        with trio.fail_after(1):
            await spent.wait()
