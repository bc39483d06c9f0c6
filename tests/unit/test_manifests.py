"""The Kubernetes manifests (deploy/kubernetes/): valid against the API's published schemas
(``kubernetes-validate``, offline), and consistent with the server's settings and image."""

from __future__ import annotations

import configparser
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from stt.settings import parse_settings
from tests.support.running import REPO

KUBERNETES = REPO / "deploy" / "kubernetes"
#: The oldest Kubernetes the manifests are for (the preStop ``sleep`` action is 1.30's).
KUBERNETES_VERSION = "1.30.0"
#: Kinds without a schema in kubernetes-validate (custom resources): checked below by hand.
CUSTOM_KINDS = {"ScaledObject"}


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


MANIFESTS = sorted(
    p for p in KUBERNETES.rglob("*.yaml") if documents(p)[0].get("kind") != "Kustomization"
)


def resource(kind: str) -> dict[str, Any]:
    found = [d for p in MANIFESTS for d in documents(p) if d["kind"] == kind]
    assert len(found) == 1, kind
    return found[0]


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: str(p.relative_to(KUBERNETES)))
def test_every_manifest_validates_against_the_kubernetes_schema(path):
    for document in documents(path):
        if document["kind"] in CUSTOM_KINDS:
            continue
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_the_kustomization_lists_every_base_manifest():
    kustomization = yaml.safe_load((KUBERNETES / "base" / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    present = {p.name for p in (KUBERNETES / "base").glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present


def test_the_keda_scaled_object_has_keda_s_structure():
    """KEDA's CRD (keda.sh/v1alpha1 ScaledObject): the fields it requires, with their types."""
    scaled = resource("ScaledObject")
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    spec = scaled["spec"]
    assert spec["scaleTargetRef"]["name"] == resource("Deployment")["metadata"]["name"]
    assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
    [trigger] = spec["triggers"]
    assert trigger["type"] == "prometheus"
    metadata = trigger["metadata"]
    assert {"serverAddress", "query", "threshold"} <= set(metadata)
    assert all(isinstance(v, str) for v in metadata.values()), "KEDA metadata values are strings"
    assert "sepia_stt_active_sessions" in metadata["query"]


def settings_of_the_config_map():
    text = resource("ConfigMap")["data"]["server.conf"]
    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=("#", ";"))
    parser.read_string(text)
    return parser


def test_the_config_map_is_valid_settings_and_the_pod_agrees_with_them(tmp_path):
    parser = settings_of_the_config_map()
    secret_dir = str(Path(parser.get("users", "users_file")).parent)
    users = tmp_path / "users.conf"
    users.write_text(resource("Secret")["stringData"]["users.conf"])
    parser.set("users", "users_file", str(users))
    settings = parse_settings(parser, tmp_path)
    server = settings.server

    pod = resource("Deployment")["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["ports"][0]["containerPort"] == server.port
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    pause = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pod["terminationGracePeriodSeconds"] >= server.drain_grace_s + pause + 2
    assert (
        pod["securityContext"]["runAsNonRoot"]
        and container["securityContext"]["readOnlyRootFilesystem"]
    )
    env = {e["name"]: e["value"] for e in container["env"]}
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert str(Path(env["SEPIA_STT_SETTINGS"]).parent) in mounts
    assert secret_dir in mounts and "/tmp" in mounts


def test_the_autoscaling_target_is_below_the_replicas_session_limit():
    parser = settings_of_the_config_map()
    threshold = float(resource("ScaledObject")["spec"]["triggers"][0]["metadata"]["threshold"])
    assert 0 < threshold < parser.getint("server", "max_sessions")
