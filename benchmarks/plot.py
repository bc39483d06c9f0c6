"""The PNG: throughput against N on the left, latencies against N on the right."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt


def plot(result: dict[str, Any], path: Path) -> None:
    points = result["points"]
    sessions = [p["sessions"] for p in points]
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    figure.suptitle(
        f"{result['model']} ({result['engine']}), {result['threads']} decode threads, "
        f"{result['audio_s']:.1f} s of speech per session"
    )

    left.plot(sessions, [p["max_pace"]["throughput"] for p in points], "o-", label="server")
    left.plot(sessions, [p["ceiling"]["throughput"] for p in points], "s--", label="in-process")
    left.set_title("max pace: throughput")
    left.set_ylim(bottom=0)
    left.set_ylabel("audio seconds per wall second")

    def latency(run: str, key: str, stat: str) -> list[float | None]:
        return [p[run][key][stat] for p in points]

    curves = [
        ("realtime: final latency p95", latency("realtime", "final_latency_s", "p95")),
        ("realtime: lag max", latency("realtime", "lag_s", "max")),
        ("realtime: first partial p50", latency("realtime", "first_partial_s", "p50")),
        ("max pace: GET /ping p99", latency("max_pace", "ping_s", "p99")),
        ("realtime: new session welcome→ack p95", latency("realtime", "ack_probe_s", "p95")),
    ]
    for label, values in curves:
        right.plot(
            sessions, [v if v is not None else float("nan") for v in values], "o-", label=label
        )
    right.set_yscale("log")
    right.set_title("latency")
    right.set_ylabel("seconds")

    for axes in (left, right):
        axes.set_xscale("log", base=2)
        axes.set_xticks(sessions, [str(n) for n in sessions])
        axes.set_xlabel("concurrent sessions N")
        axes.grid(True, which="both", alpha=0.3)
        axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
