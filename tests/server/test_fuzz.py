"""Random input against the real server: every case gets a protocol answer, never a crash.

While the fuzzer sends, a healthy session streams beside it and must get its exact final.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from trio_websocket import ConnectionClosed, open_websocket_url

from stt.client import SttClient
from tests.support.audio import silence
from tests.support.running import RunningServer, write_settings

#: Names the server may answer bad input with; anything else (``Error``) is a server bug.
PROTOCOL_ERRORS = {
    "InvalidMessage", "Unauthorized", "NotPossible", "ProcessError", "ChunkProcessorError",
    "MessageTooLarge", "TimeoutMessage", "TooManyErrors",
}  # fmt: skip
ANSWERS = {"welcome", "result", "response", "ping", "error"}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
welcome_data = st.dictionaries(
    st.sampled_from(
        ["samplerate", "language", "model", "task", "continuous", "alternatives", "words",
         "phrases", "speaker", "optimizeFinalResult", "interimResults", "script"]
    ),
    json_values,
    max_size=5,
)  # fmt: skip
messages = st.fixed_dictionaries(
    {"type": st.sampled_from(["welcome", "audioend", "pong", "chat", "", "x" * 300])},
    optional={
        "msg_id": st.integers(-(2**70), 2**70) | json_values,
        "data": welcome_data | json_values,
        "client_id": st.text(max_size=20) | json_values,
        "access_token": st.just("test1234") | st.text(max_size=20),
    },
)
frames = st.lists(
    st.one_of(
        messages.map(json.dumps),
        st.text(max_size=200),
        st.binary(max_size=5000),
        st.just(
            json.dumps(
                {
                    "type": "welcome",
                    "msg_id": 1,
                    "access_token": "test1234",
                    "data": {"model": "test-engine"},
                }
            )
        ),
    ),
    min_size=1,
    max_size=8,
)


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory) -> Iterator[RunningServer]:
    folder = tmp_path_factory.mktemp("fuzz")
    running = RunningServer(write_settings(folder, auth_delay_s=0.0))
    yield running
    running.stop()


async def fuzz_one(server: RunningServer, sequence: list[str | bytes]) -> list[dict[str, Any]]:
    """Send the frames, then collect what comes back until the server is quiet."""
    answers: list[dict[str, Any]] = []
    async with open_websocket_url(server.ws_url + "/socket") as websocket:
        for frame in sequence:
            await websocket.send_message(frame)
        with trio.move_on_after(0.3):
            try:
                while True:
                    answers.append(json.loads(await websocket.get_message()))
            except ConnectionClosed as closed:
                # 1008: more than five refused messages before the welcome.
                assert closed.reason.code in (1000, 1008, 1013), closed.reason
    return answers


async def healthy_session(server: RunningServer) -> str:
    async with SttClient.connect(server.http_url) as client:
        await client.welcome({"model": "script-en", "script": "all is well"})
        result = await client.transcribe(silence(0.5), pace=4.0)
    return result.final["transcript"]


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sequence=frames)
async def test_random_input_gets_protocol_answers_only(fuzz_server, sequence):
    outcome: dict[str, Any] = {}

    async def fuzz() -> None:
        outcome["answers"] = await fuzz_one(fuzz_server, sequence)

    async def healthy() -> None:
        outcome["healthy"] = await healthy_session(fuzz_server)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(fuzz)
        nursery.start_soon(healthy)

    assert outcome["healthy"] == "all is well"
    for answer in outcome["answers"]:
        assert answer["type"] in ANSWERS, answer
        if answer["type"] == "error":
            assert answer["name"] in PROTOCOL_ERRORS, answer
            assert isinstance(answer["code"], int) and answer["message"]
