"""Tests of the container image, against ``$SEPIA_STT_IMAGE``.

``nox -s container`` makes podman ready, builds the image from the checkout and runs them;
``nox -s container_arm64`` / ``container_armv7`` run the smoke tests on an emulated build.
Without ``SEPIA_STT_IMAGE`` (``nox -s tests``) nothing here is collected. Tests that need a
model the image was not built with are deselected, not skipped.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from tests.container.podman import IMAGE_ENV, Container, models

if not os.environ.get(IMAGE_ENV):
    collect_ignore_glob = ["test_*.py"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "smoke: also run on emulated arm64 and armv7 builds")
    config.addinivalue_line("markers", "needs_model(name): deselected unless the image has it")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    built = set(models())
    keep, drop = [], []
    for item in items:
        needed = {m.args[0] for m in item.iter_markers("needs_model")}
        (keep if needed <= built else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session", autouse=True)
def _podman() -> None:
    # No skip: the session that sets SEPIA_STT_IMAGE installs podman first.
    assert shutil.which("podman"), "podman is not installed (deploy/container/podman-setup.sh)"


@pytest.fixture(scope="module")
def server() -> Iterator[Container]:
    """The image as users run it: default command, settings and user; port on 127.0.0.1."""
    container = Container()
    try:
        container.wait_ready()
        yield container
    finally:
        container.remove()
