"""The image as users get it: what it is made of, how it runs, what it transcribes, how it stops.

Real speech goes through the container's published port (127.0.0.1 only) to the models
installed in the image.
"""

from __future__ import annotations

import json
import os
import re

import httpx
import pytest
import trio

from stt.client import SttClient, Transcription
from tests.container.podman import (
    MAX_MB_ENV,
    Container,
    http_get,
    image,
    inspect_image,
    podman,
    slowdown,
)
from tests.support.audio import KOREAN_SENTENCES, encode, silence, speak
from tests.support.wer import GO_FORWARD, LIBRIVOX, librivox_transcripts, read_wav, word_errors

#: podman's and docker's default: SIGKILL this long after SIGTERM.
DEFAULT_STOP_TIMEOUT_S = 10
#: The clip streamed at realtime pace while the container is stopped (7.1 s).
DRAIN_CLIP = "sense_and_sensibility_01_austen_64kb-0870"
#: Seconds of it sent before ``podman stop``: the rest (2.1 s) and the final fit the 6 s drain.
STOP_AFTER_S = 5.0
BYTES_PER_SECOND = 32000
WHISPER = "whisper-tiny-en"
VOSK_KO = "vosk-ko"
#: Tools that would show a compiler toolchain in the image.
COMPILERS = ["gcc", "cc", "c++", "g++", "clang", "ld", "as", "make"]
#: Debian packages of a toolchain (gcc-12-base, libgcc's runtime, is no compiler).
COMPILER_PACKAGES = ["gcc(-[0-9]+)?", "cpp(-[0-9]+)?", "g\\+\\+(-[0-9]+)?", "binutils", "libc6-dev"]


async def transcribe(
    url: str, pcm: bytes, language: str, pace: float | None = None
) -> Transcription:
    with trio.fail_after(60 * slowdown()):
        async with SttClient.connect(url) as client:
            await client.welcome({"language": language})
            return await client.transcribe(pcm, pace=pace)


def go_forward() -> bytes:
    return GO_FORWARD.read_bytes()


# -- what the image is --------------------------------------------------------------------------


@pytest.mark.smoke
def test_image_metadata_runs_the_server_as_a_user_with_a_health_check():
    data = inspect_image()
    config = data["Config"]
    assert config["User"] == "stt"
    assert config["Cmd"] == ["sepia-stt"]
    assert "20741/tcp" in config["ExposedPorts"]
    assert config["StopSignal"] == "SIGTERM"
    assert "/models" in config["Volumes"]
    assert "SEPIA_STT_SETTINGS=/etc/sepia-stt/server.conf" in config["Env"]
    # Kept only with --format docker: podman's default OCI format drops it.
    assert "/health" in " ".join(data["Healthcheck"]["Test"])


def test_image_size():
    size_mb = inspect_image()["Size"] / 1e6
    layers = podman("history", "--format", "{{.Size}}\t{{.CreatedBy}}", image()).stdout
    print(f"image {image()}: {size_mb:.1f} MB\n{layers}")
    limit = os.environ.get(MAX_MB_ENV)
    if limit:
        assert size_mb <= float(limit), f"{size_mb:.1f} MB > {limit} MB"


@pytest.mark.smoke
def test_no_compiler_and_the_server_installed_from_its_wheel():
    script = f"""
for tool in {" ".join(COMPILERS)}; do command -v "$tool" && exit 3; done
dpkg-query -W -f '${{Package}}\\n' | grep -E '^({"|".join(COMPILER_PACKAGES)})$' && exit 4
exec python -c '
import importlib.metadata, json, stt
dist = importlib.metadata.distribution("sepia-stt")
print(json.dumps({{"file": stt.__file__, "direct_url": dist.read_text("direct_url.json")}}))
'
"""
    result = podman(
        "run", "--rm", "--no-healthcheck", "--entrypoint", "sh", image(), "-c", script, check=False
    )
    assert result.returncode == 0, f"found in the image:\n{result.stdout}{result.stderr}"
    installed = json.loads(result.stdout.splitlines()[-1])
    assert re.match(r"/opt/venv/lib/python3\.\d+/site-packages/stt/", installed["file"])
    # A wheel, not an editable install (that would be {"dir_info": {"editable": true}}).
    assert "editable" not in (installed["direct_url"] or "")


# -- how it runs --------------------------------------------------------------------------------


@pytest.mark.smoke
def test_the_server_is_pid_1_and_not_root(server: Container):
    assert "sepia-stt" in server.exec("cat", "/proc/1/cmdline")
    uids = next(
        line
        for line in server.exec("cat", "/proc/1/status").splitlines()
        if line.startswith("Uid:")
    )
    assert all(uid != "0" for uid in uids.split()[1:]), uids
    assert server.exec("id", "-u").strip() != "0"


@pytest.mark.smoke
def test_health_and_the_image_health_check(server: Container):
    assert http_get(f"{server.url}/health")[0] == 200
    status, body = http_get(f"{server.url}/ready")
    assert (status, json.loads(body)["ready"]) == (200, True)
    # No systemd timer runs it here; run it by hand as the runtime would.
    podman("healthcheck", "run", server.name, timeout=30 * slowdown())


# -- what it transcribes ------------------------------------------------------------------------


@pytest.mark.smoke
@pytest.mark.needs_model(WHISPER)
async def test_transcribes_english_speech(server: Container):
    result = await transcribe(server.url, go_forward(), "en-US")
    transcript = result.final["transcript"]
    assert word_errors(transcript, "go forward ten meters") == (0, 4), transcript


@pytest.mark.needs_model(WHISPER)
async def test_transcribes_librivox_readings(server: Container):
    errors = words = 0
    for clip, reference in sorted(librivox_transcripts().items()):
        result = await transcribe(server.url, read_wav(LIBRIVOX / f"{clip}.wav"), "en-US")
        clip_errors, clip_words = word_errors(result.final["transcript"], reference)
        errors, words = errors + clip_errors, words + clip_words
    assert words > 50
    assert errors / words <= 0.10, f"WER {errors / words:.1%}"


@pytest.mark.smoke
@pytest.mark.needs_model(VOSK_KO)
async def test_transcribes_korean_speech(server: Container):
    speech = silence(0.3) + speak(KOREAN_SENTENCES[0]) + silence(0.5)
    result = await transcribe(server.url, speech, "ko-KR")
    words = result.final["transcript"].split()
    assert words, result.messages
    # Mostly Hangul (the model's vocabulary has some Latin words too).
    hangul = [word for word in words if re.search(r"[\uac00-\ud7a3]", word)]
    assert len(hangul) >= len(words) / 2, words


@pytest.mark.needs_model(WHISPER)
def test_transcribes_an_uploaded_recording_in_openais_api(server: Container):
    """Opus in OGG, decoded by the image's FFmpeg libraries, to subtitles."""
    audio = encode(read_wav(LIBRIVOX / f"{DRAIN_CLIP}.wav"), "ogg", "libopus", 48000)
    answer = httpx.post(
        f"{server.url}/v1/audio/transcriptions",
        headers={"Authorization": "Bearer test1234"},
        data={"model": "whisper-1", "response_format": "srt"},
        files={"file": ("reading.ogg", audio)},
        timeout=60 * slowdown(),
    )
    assert answer.status_code == 200, answer.text
    cue_lines = answer.text.splitlines()
    said = " ".join(line for line in cue_lines if line and "-->" not in line and not line.isdigit())
    errors, words = word_errors(said, librivox_transcripts()[DRAIN_CLIP])
    assert errors / words <= 0.15, said


@pytest.mark.needs_model(WHISPER)
def test_nothing_of_the_image_is_written_at_run_time(server: Container):
    """After it served sessions: no bytecode compiled late, nothing changed under /opt or /usr."""
    changed = [line.split(maxsplit=1)[1] for line in server.diff()]
    assert not [path for path in changed if path.endswith(".pyc")], changed
    assert not [path for path in changed if path.startswith(("/opt", "/usr"))], changed


@pytest.mark.needs_model(WHISPER)
async def test_runs_with_a_read_only_root_file_system():
    container = Container("--read-only", "--tmpfs", "/tmp")
    try:
        await trio.to_thread.run_sync(container.wait_ready)
        result = await transcribe(container.url, go_forward(), "en-US")
        assert word_errors(result.final["transcript"], "go forward ten meters")[0] == 0
    finally:
        container.remove()


# -- how it stops -------------------------------------------------------------------------------


@pytest.mark.needs_model(WHISPER)
async def test_podman_stop_lets_a_running_stream_reach_its_final_then_exits_0():
    """``podman stop`` (default timeout) in the middle of a realtime stream."""
    reference = librivox_transcripts()[DRAIN_CLIP]
    pcm = read_wav(LIBRIVOX / f"{DRAIN_CLIP}.wav")
    container = Container()
    try:
        await trio.to_thread.run_sync(container.wait_ready)
        results: list[Transcription] = []
        stop_took: list[float] = []

        async def stream() -> None:
            results.append(await transcribe(container.url, pcm, "en-US", pace=1.0))

        async def stop() -> None:
            await trio.sleep(STOP_AFTER_S)
            stop_took.append(await trio.to_thread.run_sync(container.stop))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(stream)
            nursery.start_soon(stop)

        state = container.state()
        logs = container.logs()
        assert "draining" in logs, logs
        assert state["ExitCode"] == 0, (state, logs)
        assert stop_took[0] < DEFAULT_STOP_TIMEOUT_S, f"stop took {stop_took[0]:.1f} s"
        final = results[0].final
        clip_errors, clip_words = word_errors(final["transcript"], reference)
        assert clip_errors / clip_words <= 0.2, final["transcript"]
        print(f"podman stop: {stop_took[0]:.1f} s, final: {final['transcript']!r}\n{logs}")
    finally:
        container.remove()
