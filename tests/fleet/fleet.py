"""Two replicas of the Kubernetes Deployment's pod, run by ``podman kube play``, behind HAProxy
(``balance leastconn``, ``option httpchk GET /ready``), all on 127.0.0.1.

The pods are the Deployment's pod template as written in ``deploy/kubernetes/base``, with the
image under test, a host port on loopback each, and the users Secret handed over as a
ConfigMap (podman 4.3 plays Secret volumes only from its own secret store).

    python -m tests.fleet.fleet up      # prints the balancer's URL last
    python -m tests.fleet.fleet down
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
BASE = REPO / "deploy" / "kubernetes" / "base"
IMAGE_ENV = "SEPIA_STT_IMAGE"
REPLICAS = 2
#: Where ``up`` leaves what ``down`` removes.
STATE = Path(tempfile.gettempdir()) / "sepia-stt-fleet"
HAPROXY_CONFIG = """\
global
    maxconn 2000

defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    # A WebSocket session is a tunnel once upgraded: as long as a session may last.
    timeout tunnel 3600s
    # The replicas trust the pod network's gateway (trusted_proxies) to name the client.
    option forwardfor

frontend stt
    bind 127.0.0.1:{port}
    default_backend replicas

backend replicas
    # Each new stream to the replica with the fewest open ones; a full or draining replica
    # answers /ready with 503 and is taken out until it has room again.
    balance leastconn
    option httpchk GET /ready
    http-check expect status 200
    default-server inter 500ms fall 1 rise 1
{servers}
"""


@dataclass(frozen=True)
class Replica:
    pod: str
    container: str
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass(frozen=True)
class Fleet:
    replicas: tuple[Replica, ...]
    balancer_port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.balancer_port}"


def documents(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((BASE / name).read_text()) if d]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run(*command: str, timeout: float = 300) -> str:
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: {result.stderr}{result.stdout}")
    return result.stdout


def pod_manifest(name: str, image: str, port: int) -> dict[str, Any]:
    """The Deployment's pod template as one Pod with the image and a loopback host port."""
    (deployment,) = documents("deployment.yaml")
    template = copy.deepcopy(deployment["spec"]["template"])
    spec = template["spec"]
    (container,) = spec["containers"]
    container["image"] = image
    container["ports"][0].update(hostPort=port, hostIP="127.0.0.1")
    for volume in spec["volumes"]:
        if "secret" in volume:
            # Readable by the server's user: podman applies no fsGroup to the files.
            secret = volume.pop("secret")["secretName"]
            volume["configMap"] = {"name": secret, "defaultMode": 0o444}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": template["metadata"]["labels"]},
        "spec": spec,
    }


def secret_as_config_map() -> dict[str, Any]:
    (secret,) = documents("secret.yaml")
    users = secret["stringData"]["users.conf"].replace(
        "common_auth_token =", "common_auth_token = test1234"
    )
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": secret["metadata"]["name"]},
        "data": {"users.conf": users},
    }


def wait_ready(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/ready", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} did not become ready in {timeout:g} s")


def up(image: str) -> Fleet:
    """Start the replicas and the balancer; what it made is written to ``STATE``."""
    down()
    STATE.mkdir(parents=True)
    replicas = [
        Replica(f"sepia-stt-fleet-{i}", f"sepia-stt-fleet-{i}-sepia-stt", free_port())
        for i in range(REPLICAS)
    ]
    manifest = [
        *documents("configmap.yaml"),
        secret_as_config_map(),
        *(pod_manifest(r.pod, image, r.port) for r in replicas),
    ]
    (STATE / "fleet.yaml").write_text(yaml.safe_dump_all(manifest))
    run("podman", "kube", "play", str(STATE / "fleet.yaml"))
    for replica in replicas:
        wait_ready(replica.url, timeout=180)
    balancer_port = free_port()
    servers = "\n".join(f"    server r{i} 127.0.0.1:{r.port} check" for i, r in enumerate(replicas))
    config = STATE / "haproxy.cfg"
    config.write_text(HAPROXY_CONFIG.format(port=balancer_port, servers=servers))
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    run(haproxy, "-c", "-f", str(config))
    run(haproxy, "-D", "-f", str(config), "-p", str(STATE / "haproxy.pid"))
    fleet = Fleet(tuple(replicas), balancer_port)
    (STATE / "fleet.json").write_text(
        json.dumps({"replicas": [r.__dict__ for r in replicas], "balancer_port": balancer_port})
    )
    wait_ready(fleet.url, timeout=30)
    return fleet


def down() -> None:
    """Remove the pods and stop the balancer ``up`` made; nothing else."""
    pid_file = STATE / "haproxy.pid"
    if pid_file.exists():
        for pid in pid_file.read_text().split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGTERM)
    manifest = STATE / "fleet.yaml"
    if manifest.exists():
        subprocess.run(
            ["podman", "kube", "down", str(manifest)], capture_output=True, timeout=120, check=False
        )
    shutil.rmtree(STATE, ignore_errors=True)


def main(argv: list[str]) -> int:
    if argv[:1] == ["up"]:
        fleet = up(os.environ.get(IMAGE_ENV, "localhost/sepia-stt:latest"))
        for replica in fleet.replicas:
            print(f"replica {replica.pod}: {replica.url}")
        print(fleet.url)
        return 0
    if argv[:1] == ["down"]:
        down()
        return 0
    print("usage: python -m tests.fleet.fleet up|down", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
