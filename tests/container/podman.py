"""Podman from the tests: run the image on a free loopback port, wait for it, stop it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Sequence
from typing import Any

#: The image under test; ``nox -s container`` builds it and sets this.
IMAGE_ENV = "SEPIA_STT_IMAGE"
#: The image's MODELS build argument (which models it serves).
MODELS_ENV = "SEPIA_STT_IMAGE_MODELS"
#: The most the image may weigh, in MB (10**6 bytes); unset: not checked.
MAX_MB_ENV = "SEPIA_STT_IMAGE_MAX_MB"
#: How much slower than native the image runs (qemu emulation): scales the time limits.
SLOWDOWN_ENV = "SEPIA_STT_IMAGE_SLOWDOWN"

CONTAINER_PORT = 20741


def image() -> str:
    return os.environ[IMAGE_ENV]


def models() -> list[str]:
    return os.environ.get(MODELS_ENV, "whisper-tiny-en").split()


def slowdown() -> float:
    return float(os.environ.get(SLOWDOWN_ENV) or 1)


def podman(
    *args: str, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["podman", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"podman {' '.join(args)} exited {result.returncode}:\n{result.stderr}{result.stdout}"
        )
    return result


def inspect_image(name: str | None = None) -> dict[str, Any]:
    return json.loads(podman("image", "inspect", name or image()).stdout)[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(url: str, timeout: float = 5) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


class Container:
    """One ``podman run -d`` of the image, published on 127.0.0.1 only."""

    def __init__(self, *run_args: str, command: Sequence[str] = ()) -> None:
        self.name = f"sepia-stt-test-{uuid.uuid4().hex[:10]}"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        podman(
            "run", "-d", "--name", self.name,
            "-p", f"127.0.0.1:{self.port}:{CONTAINER_PORT}",
            *run_args, image(), *command,
        )  # fmt: skip

    def wait_ready(self, timeout: float = 120) -> float:
        """Seconds until ``/ready`` answered 200; fails with the log if the server died."""
        started = time.monotonic()
        deadline = started + timeout * slowdown()
        while time.monotonic() < deadline:
            try:
                if http_get(f"{self.url}/ready", timeout=2)[0] == 200:
                    return time.monotonic() - started
            except OSError:
                pass
            if self.state()["Status"] != "running":
                raise AssertionError(f"the container stopped:\n{self.logs()}")
            time.sleep(0.25)
        raise AssertionError(f"not ready after {timeout * slowdown():.0f} s:\n{self.logs()}")

    def state(self) -> dict[str, Any]:
        return json.loads(podman("inspect", "--format", "{{json .State}}", self.name).stdout)

    def logs(self) -> str:
        result = podman("logs", self.name, check=False)
        return result.stdout + result.stderr

    def exec(self, *command: str, user: str | None = None) -> str:
        return podman("exec", *(["--user", user] if user else []), self.name, *command).stdout

    def diff(self) -> list[str]:
        return podman("diff", self.name).stdout.splitlines()

    def stop(self) -> float:
        """``podman stop`` with the runtime's default timeout; returns the seconds it took."""
        started = time.monotonic()
        podman("stop", self.name, timeout=60)
        return time.monotonic() - started

    def remove(self) -> None:
        podman("rm", "--force", "--time", "0", self.name, check=False)
