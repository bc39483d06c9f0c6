"""File transcription limits, over plain HTTP against the real server with test engines.

The byte-counting engine shows exactly what audio reached it (after decoding and
resampling); the slow engine decodes at realtime, so a job lasts as long as its audio.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator

import httpx
import pytest
import trio

from tests.support.audio import encode, silence, wav_file
from tests.support.running import RunningServer, gauge, write_settings

TOKEN = "test1234"
URL = "/v1/audio/transcriptions"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MAX_UPLOAD_MB = 3
MAX_AUDIO_S = 30

FILES = f"""
path7 = .
name7 = slow
lang7 = de-DE
engine7 = tests.support.engines:SlowEngine

[files]
max_upload_mb = {MAX_UPLOAD_MB}
max_audio_s = {MAX_AUDIO_S}
max_jobs = 1
"""


@pytest.fixture(scope="module")
def files_server(tmp_path_factory) -> Iterator[RunningServer]:
    running = RunningServer(write_settings(tmp_path_factory.mktemp("files"), extra=FILES))
    yield running
    running.stop()


def wav(seconds: float, rate: int = 16000) -> bytes:
    return wav_file(b"\0\0" * int(seconds * rate), rate)


def flac(seconds: float) -> bytes:
    """Silence as FLAC: a long recording in a small file."""
    return encode(silence(seconds), "flac", "flac", 16000)


def post(
    server: RunningServer, audio: bytes, model: str = "test-engine", **fields
) -> httpx.Response:
    return httpx.post(
        server.http_url + URL,
        headers=AUTH,
        data={"model": model, "response_format": "text", **fields},
        files={"file": ("audio.wav", audio)},
        timeout=60,
    )


def counter(server: RunningServer, name: str, **labels: str) -> float:
    text = httpx.get(server.http_url + "/metrics").text
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    found = re.search(rf"^{name}\{{{re.escape(wanted)}\}} (\S+)$", text, flags=re.M)
    return float(found[1]) if found else 0.0


def test_the_engine_gets_the_audio_resampled_to_its_rate(files_server):
    # 2.5 s at 8 kHz is 80,000 bytes at the model's 16 kHz.
    answer = post(files_server, wav(2.5, rate=8000))
    assert answer.status_code == 200, answer.text
    assert answer.text.strip() == "[processed bytes: 80000]"


def test_a_users_own_token_works_as_bearer_name_colon_token(files_server):
    answer = httpx.post(
        files_server.http_url + URL,
        headers={"Authorization": "Bearer alice:alice-secret"},
        data={"model": "test-engine"},
        files={"file": ("a.wav", wav(1))},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["text"] == "[processed bytes: 32000]"


def test_an_upload_above_the_size_limit_is_413_at_once(files_server):
    answer = post(files_server, wav(MAX_UPLOAD_MB * 1e6 / 32000 + 5))
    assert answer.status_code == 413
    assert f"limit of {MAX_UPLOAD_MB} MB" in answer.json()["error"]["message"]


def test_an_upload_without_a_length_is_stopped_at_the_limit(files_server):
    """Chunked, with no Content-Length: counted as it comes, refused once past the limit."""
    boundary = "b0undary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="model"\r\n\r\ntest-engine\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
        "Content-Type: audio/wav\r\n\r\n"
    ).encode()

    def body() -> Iterator[bytes]:
        yield head + wav(0)[:44]
        for _ in range(int(MAX_UPLOAD_MB * 1e6 / 65536) + 20):
            yield b"\0" * 65536

    try:
        answer = httpx.post(
            files_server.http_url + URL,
            headers={**AUTH, "Content-Type": f"multipart/form-data; boundary={boundary}"},
            content=body(),
            timeout=30,
        )
    except httpx.TransportError:
        pass  # the server may close while the client is still sending: refused either way
    else:
        assert answer.status_code == 413
    assert counter(files_server, "sepia_stt_file_jobs_finished_total", outcome="FileTooLarge")


@pytest.mark.parametrize("stream", ["false", "true"])
def test_audio_longer_than_the_limit_is_413(files_server, stream):
    """Checked before any answer starts, so a streamed request gets the status too."""
    answer = post(files_server, flac(MAX_AUDIO_S + 10), stream=stream)
    assert answer.status_code == 413
    assert f"limit of {MAX_AUDIO_S} s" in answer.json()["error"]["message"]


def test_a_streamed_request_for_a_file_that_is_not_audio_is_415(files_server):
    answer = post(files_server, b"plain text, not audio\n" * 100, stream="true")
    assert answer.status_code == 415
    assert answer.headers["content-type"].startswith("application/json")


async def test_a_job_beyond_max_jobs_is_429_and_a_leaving_client_stops_its_job(files_server):
    """One job runs (max_jobs = 1): a second is refused with 429 and Retry-After; its client
    hangs up, and the job stops at once rather than running its 20 s of audio."""
    server = files_server
    gone_before = counter(server, "sepia_stt_file_jobs_finished_total", outcome="client gone")
    async with httpx.AsyncClient(base_url=server.http_url, headers=AUTH, timeout=60) as http:

        async def long_job() -> None:
            with pytest.raises(httpx.ReadTimeout):
                await http.post(
                    URL,
                    data={"model": "slow"},
                    files={"file": ("long.wav", wav(20))},
                    timeout=httpx.Timeout(60, read=4),
                )

        async with trio.open_nursery() as nursery:
            nursery.start_soon(long_job)
            with trio.fail_after(5):
                while await gauge(server, "sepia_stt_file_jobs_running") < 1:
                    await trio.sleep(0.05)
            # Progress shows in /metrics while it runs.
            await trio.sleep(1.5)
            total = await gauge(server, "sepia_stt_file_audio_total_seconds")
            done = await gauge(server, "sepia_stt_file_audio_done_seconds")
            assert total == pytest.approx(20, abs=0.1) and 0 < done < 20
            refused = await http.post(URL, data={"model": "test-engine"}, files={"file": wav(1)})
            assert refused.status_code == 429
            assert refused.headers["retry-after"] and refused.json()["error"]["type"] == (
                "rate_limit_error"
            )
        # The client gave up after 4 s: the job stopped with it, long before its 20 s.
        with trio.fail_after(3):
            while await gauge(server, "sepia_stt_file_jobs_running"):
                await trio.sleep(0.05)
    gone = counter(server, "sepia_stt_file_jobs_finished_total", outcome="client gone")
    assert gone == gone_before + 1
    assert await gauge(server, "sepia_stt_file_audio_total_seconds") == 0
    # And the place is free again.
    assert post(server, wav(1)).status_code == 200


def test_models_need_the_token(files_server):
    assert httpx.get(files_server.http_url + "/v1/models").status_code == 401
    listed = httpx.get(files_server.http_url + "/v1/models", headers=AUTH).json()
    assert {"test-engine", "slow", "whisper-1"} <= {m["id"] for m in listed["data"]}


def test_the_event_stream_ends_with_an_error_event_when_the_engine_fails(files_server):
    with httpx.stream(
        "POST",
        files_server.http_url + URL,
        headers=AUTH,
        data={"model": "failing", "stream": "true"},
        files={"file": ("a.wav", wav(2))},
    ) as answer:
        assert answer.status_code == 200
        events = [line for line in answer.iter_lines() if line.startswith("data: ")]
    assert '"error"' in events[-1] and '"server_error"' in events[-1]


def test_silence_is_an_empty_transcript_not_an_error(files_server):
    answer = post(files_server, wav(0.5), model="script-en", response_format="json")
    assert answer.status_code == 200, answer.text
    assert "text" in answer.json()


def test_part_headers_that_never_end_are_refused(files_server):
    boundary = "b0undary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
        "X-Padding: " + "a" * 2_000_000
    ).encode()
    answer = httpx.post(
        files_server.http_url + URL,
        headers={**AUTH, "Content-Type": f"multipart/form-data; boundary={boundary}"},
        content=body,
        timeout=30,
    )
    assert answer.status_code == 400
    assert "never ends" in answer.json()["error"]["message"]


async def test_a_drain_lets_a_running_job_finish_and_refuses_new_ones_with_503(tmp_path):
    settings = write_settings(tmp_path, drain_grace_s=30, extra=FILES)
    server = RunningServer(settings)
    answers: list[httpx.Response] = []
    http = httpx.AsyncClient(base_url=server.http_url, headers=AUTH, timeout=60)
    try:
        async with http, trio.open_nursery() as nursery:

            async def job() -> None:
                files = {"file": ("a.wav", wav(4))}
                answers.append(await http.post(URL, data={"model": "slow"}, files=files))

            nursery.start_soon(job)
            with trio.fail_after(5):
                while await gauge(server, "sepia_stt_file_jobs_running") < 1:
                    await trio.sleep(0.05)
            server.process.send_signal(signal.SIGTERM)
            await trio.sleep(0.5)
            refused = await http.post(URL, data={"model": "test-engine"}, files={"file": wav(1)})
            assert refused.status_code == 503
            assert refused.json()["error"]["type"] == "server_error"
        assert answers[0].status_code == 200, answers[0].text
        with trio.fail_after(10):  # it stops once the job is done, not at the end of the grace
            while server.process.poll() is None:
                await trio.sleep(0.05)
        assert server.process.returncode == 0
    finally:
        server.stop()
