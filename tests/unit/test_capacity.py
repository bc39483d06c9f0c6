"""The capacity model's simulation (benchmarks/capacity.py) against queueing theory."""

from __future__ import annotations

import random

import pytest

from benchmarks.capacity import KEEP_UP, Mix, replicas_needed, simulate


def erlang_b(offered: float, servers: int) -> float:
    """The share of sessions a loss system with ``servers`` places refuses (any length law)."""
    blocked = 1.0
    for count in range(1, servers + 1):
        blocked = offered * blocked / (count + offered * blocked)
    return blocked


class ExponentialMix(Mix):
    def length(self, rng: random.Random) -> float:
        return rng.expovariate(1 / self.mean_s)

    def remaining(self, rng: random.Random) -> float:
        return rng.expovariate(1 / self.mean_s)


@pytest.mark.parametrize(("streams", "replicas"), [(20, 6), (40, 11)])
def test_refusals_match_erlang_b(streams, replicas):
    """Every slot of every replica is one server: leastconn over /ready is a loss system."""
    outcome = simulate(ExponentialMix(streams), replicas, 4, sessions=60_000)
    expected = erlang_b(streams, 4 * replicas)
    assert outcome.refused_share == pytest.approx(expected, rel=0.25, abs=0.002)


def test_more_replicas_refuse_less_and_the_answer_meets_the_target():
    mix = Mix(50)
    shares = [
        simulate(mix, n, KEEP_UP["vosk"], sessions=20_000).refused_share for n in (13, 15, 18)
    ]
    assert shares[0] > shares[1] >= shares[2]
    needed = replicas_needed(mix, KEEP_UP["vosk"], 0.001, sessions=20_000)
    assert needed.refused_share <= 0.001
    assert simulate(mix, needed.replicas - 1, 4, sessions=20_000).refused_share > 0.001
    assert needed.peak_streams <= 4 * needed.replicas
