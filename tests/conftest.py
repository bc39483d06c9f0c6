from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support.audio import KOREAN_SENTENCES, silence, speak
from tests.support.running import RunningServer, write_settings

#: A skip whose reason starts with this is allowed in CI too: the test needs something CI is
#: not meant to have (a large download on request, the workplace's optional audio).
OPTIONAL = "optional:"


def _skip_reason(report: pytest.CollectReport | pytest.TestReport) -> str:
    longrepr = report.longrepr
    return longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)


def _fail_skip_in_ci(report: pytest.CollectReport | pytest.TestReport) -> None:
    """In CI a test that skips for a missing package, tool or model proves nothing: fail it."""
    if os.environ.get("CI") and report.skipped:
        reason = _skip_reason(report).removeprefix("Skipped: ")
        if not reason.startswith(OPTIONAL):
            report.outcome = "failed"
            report.longrepr = f"skipped in CI (CI is set): {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator[None]:
    outcome = yield
    _fail_skip_in_ci(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    _fail_skip_in_ci(outcome.get_result())


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """The server with the Korean Vosk model and the byte-counting test engine."""
    running = RunningServer(write_settings(tmp_path_factory.mktemp("server")))
    yield running
    running.stop()


@pytest.fixture(scope="session")
def korean_speech() -> bytes:
    """One sentence of Korean speech with silence around it."""
    return silence(0.3) + speak(KOREAN_SENTENCES[0]) + silence(0.5)


@pytest.fixture(scope="session")
def korean_utterances() -> bytes:
    """Two sentences with a long pause between them: two utterances for the endpointer."""
    first, second = (speak(s) for s in KOREAN_SENTENCES)
    return silence(0.3) + first + silence(1.5) + second + silence(0.5)
