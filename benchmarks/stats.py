"""Percentiles the way the report quotes them."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (linear interpolation); None for no values."""
    return float(np.percentile(values, q)) if len(values) else None


def summary(values: Sequence[float]) -> dict[str, float | int | None]:
    """p50, p95, p99, max and the count: the figures every latency is reported with."""
    return {
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "max": max(values) if len(values) else None,
        "count": len(values),
    }


def slope(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Least-squares slope of ys over xs (e.g. MB per extra session); None below two points."""
    if len(set(xs)) < 2:
        return None
    return float(np.polyfit(xs, ys, 1)[0])
