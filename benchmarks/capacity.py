"""How many replicas carry N concurrent realtime streams: a small discrete-event simulation.

Sessions arrive as a Poisson process and last a log-normal time (``--mean-s``, ``--sigma``);
the balancer sends each to the replica with the fewest streams among those below
``max_sessions`` (``balance leastconn`` + ``/ready``), and a session that finds every
replica full is refused.  What a replica carries comes from measurements, not from a
formula: the realtime streams that keep up on one 2-core replica in the load benchmark
(``KEEP_UP``; the fleet test runs 2 replicas x 4 Vosk streams).  ``max_sessions`` is that
count, so a replica never falls behind; the question is how many replicas keep refusals
rare while the number of streams fluctuates around its mean (arrival rate x mean length).

    python -m benchmarks.capacity                      # the README's table
    python -m benchmarks.capacity --engine whisper --streams 100 --refused 0.001
"""

from __future__ import annotations

import argparse
import heapq
import math
import random
from dataclasses import dataclass

#: Realtime streams that keep up on one replica of 2 cores (README "Load benchmark": lag
#: bounded, not growing): Vosk with a small model 4, Whisper tiny.en 2.
KEEP_UP = {"vosk": 4, "whisper": 2}


@dataclass(frozen=True)
class Mix:
    """The sessions: how often they start and how long they last."""

    streams: float  # mean concurrent streams (arrival rate x mean length)
    mean_s: float = 30.0
    sigma: float = 1.0  # of the log of the length: 1.0 is a long tail of long sessions

    @property
    def arrival_rate(self) -> float:
        return self.streams / self.mean_s

    @property
    def mu(self) -> float:
        return math.log(self.mean_s) - self.sigma**2 / 2  # so that the mean is mean_s

    def length(self, rng: random.Random) -> float:
        return rng.lognormvariate(self.mu, self.sigma)

    def remaining(self, rng: random.Random) -> float:
        """What is left of a session running at a random moment: a share of a length-biased
        length (long sessions are more often the running ones; for a log-normal, mu + sigma**2).
        """
        return rng.random() * rng.lognormvariate(self.mu + self.sigma**2, self.sigma)

    def running(self, rng: random.Random) -> int:
        """Sessions running at a random moment: Poisson with mean ``streams``."""
        if self.streams > 50:
            return max(0, round(rng.gauss(self.streams, math.sqrt(self.streams))))
        limit, count, product = math.exp(-self.streams), 0, rng.random()
        while product > limit:
            count, product = count + 1, product * rng.random()
        return count


@dataclass(frozen=True)
class Outcome:
    replicas: int
    sessions: int
    refused: int
    peak_streams: int

    @property
    def refused_share(self) -> float:
        return self.refused / self.sessions if self.sessions else 0.0


def simulate(
    mix: Mix, replicas: int, per_replica: int, *, sessions: int = 100_000, seed: int = 1
) -> Outcome:
    """``sessions`` arrivals, measured from a running start (see below)."""
    rng = random.Random(seed)
    # Replicas by their number of streams: leastconn takes one from the lowest level.
    levels: list[set[int]] = [set(range(replicas))] + [set() for _ in range(per_replica)]
    load = [0] * replicas
    ends: list[tuple[float, int]] = []  # (end time, replica)
    streams = 0
    # Start as the system runs, not empty: the sessions running at a random moment (without
    # the limit), each with what is left of it; then two mean lengths of warm-up.
    for _ in range(mix.running(rng)):
        lowest = next((level for level in range(per_replica) if levels[level]), None)
        if lowest is not None:
            replica = next(iter(levels[lowest]))
            levels[lowest].discard(replica)
            load[replica] += 1
            levels[lowest + 1].add(replica)
            streams += 1
            heapq.heappush(ends, (mix.remaining(rng), replica))
    warm_up = math.ceil(2 * mix.streams)
    now = 0.0
    refused = peak = 0
    for arrival in range(warm_up + sessions):
        now += rng.expovariate(mix.arrival_rate)
        while ends and ends[0][0] <= now:
            _, replica = heapq.heappop(ends)
            levels[load[replica]].discard(replica)
            load[replica] -= 1
            levels[load[replica]].add(replica)
            streams -= 1
        measuring = arrival >= warm_up
        lowest = next((level for level in range(per_replica) if levels[level]), None)
        if lowest is None:  # every replica full: /ready is 503 everywhere
            refused += measuring
        else:
            replica = next(iter(levels[lowest]))
            levels[lowest].discard(replica)
            load[replica] += 1
            levels[lowest + 1].add(replica)
            streams += 1
            heapq.heappush(ends, (now + mix.length(rng), replica))
        if measuring:
            peak = max(peak, streams)
    return Outcome(replicas, sessions, refused, peak)


def replicas_needed(mix: Mix, per_replica: int, refused: float, **kwargs: int) -> Outcome:
    """The fewest replicas that refuse at most ``refused`` of the sessions."""
    low = max(1, math.ceil(mix.streams / per_replica))
    high = low
    while (outcome := simulate(mix, high, per_replica, **kwargs)).refused_share > refused:
        low, high = high + 1, math.ceil(high * 1.25) + 1
    while low < high:  # the smallest count in [low, high] that is good enough
        middle = (low + high) // 2
        if simulate(mix, middle, per_replica, **kwargs).refused_share <= refused:
            high = middle
        else:
            low = middle + 1
    return outcome if outcome.replicas == high else simulate(mix, high, per_replica, **kwargs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=sorted(KEEP_UP), action="append")
    parser.add_argument("--streams", type=float, action="append", help="mean concurrent streams")
    parser.add_argument("--mean-s", type=float, default=30.0, help="mean session length")
    parser.add_argument("--sigma", type=float, default=1.0, help="spread of session lengths")
    parser.add_argument("--refused", type=float, default=0.001, help="share that may be refused")
    args = parser.parse_args()
    engines = args.engine or sorted(KEEP_UP)
    counts = args.streams or [10, 100, 1000, 10000]
    print(f"sessions {args.mean_s:g} s on average (log-normal, sigma {args.sigma:g}), "
          f"at most {args.refused:.1%} refused; replicas of 2 cores")  # fmt: skip
    print("| streams | " + " | ".join(f"{e} ({KEEP_UP[e]}/replica)" for e in engines) + " |")
    print("|---" * (len(engines) + 1) + "|")
    for streams in counts:
        mix = Mix(streams, args.mean_s, args.sigma)
        cells = []
        for engine in engines:
            outcome = replicas_needed(mix, KEEP_UP[engine], args.refused)
            cells.append(f"{outcome.replicas} (peak {outcome.peak_streams} streams)")
        print(f"| {streams:g} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
