"""Memory and CPU of a process, and how busy the rest of the machine was meanwhile.

The machine is shared, so every run also reports the CPU that *other*
processes used during it: figures from a run where others took a core are
not comparable with a quiet run.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

import psutil

MB = 2**20
#: RSS is sampled this often while a run goes on (peaks of decoder state are short).
SAMPLE_INTERVAL_S = 0.05


def rss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / MB


class RssSampler:
    """Samples a process's RSS in a background thread; use as a context manager."""

    def __init__(self, pid: int) -> None:
        self._process = psutil.Process(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self.peak_mb = 0.0

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while True:
            self.peak_mb = max(self.peak_mb, self._process.memory_info().rss / MB)
            if self._stop.wait(SAMPLE_INTERVAL_S):
                return


@dataclass(frozen=True, slots=True)
class CpuUsage:
    """CPU seconds over one run: of the measured process, and of everything else."""

    wall_s: float
    #: CPU of the measured process (the server, or this process for the ceiling).
    cpu_s: float
    #: CPU of this benchmark process (the load generator), when it is not the measured one.
    client_cpu_s: float
    #: CPU of all other processes: neither the measured one nor this benchmark.
    others_cpu_s: float

    @property
    def client_cores(self) -> float:
        return self.client_cpu_s / self.wall_s if self.wall_s else 0.0

    @property
    def others_cores(self) -> float:
        """Cores the rest of the machine kept busy on average (0 = a quiet machine)."""
        return self.others_cpu_s / self.wall_s if self.wall_s else 0.0


class CpuMeter:
    """CPU time of a process, and of the rest of the machine, between enter and exit."""

    def __init__(self, pid: int) -> None:
        self._measured = psutil.Process(pid)
        self._ours = {pid, os.getpid()}

    def __enter__(self) -> CpuMeter:
        self._start = self._read()
        return self

    def __exit__(self, *exc_info: object) -> None:
        wall, measured, ours, machine = (
            b - a for a, b in zip(self._start, self._read(), strict=True)
        )
        self.usage = CpuUsage(wall, measured, ours - measured, max(0.0, machine - ours))

    def _read(self) -> tuple[float, float, float, float]:
        measured = process_cpu_s(self._measured)
        ours = sum(process_cpu_s(psutil.Process(pid)) for pid in self._ours)
        machine = psutil.cpu_times()
        busy = machine.user + machine.system + machine.nice + machine.irq + machine.softirq
        return time.monotonic(), measured, ours, busy


def process_cpu_s(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


@dataclass(frozen=True, slots=True)
class RunUsage:
    """The server process over one load run."""

    rss_before_mb: float
    rss_peak_mb: float
    #: After the sessions closed and the server settled.
    rss_after_mb: float
    cpu: CpuUsage
