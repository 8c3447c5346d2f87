"""Timing helpers: best-of-n rates, medians and percentiles, number formatting."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence

__all__ = ["best_rate", "best_rates", "human_rate", "median_ms", "percentile"]


def best_rate(
    run: Callable[[], object],
    count: int,
    repeats: int = 3,
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    """Operations per second of ``run`` (which does ``count`` operations), best of ``repeats``.

    The best run is the one least disturbed by whatever else the machine was doing. With
    ``clock=time.process_time`` it is operations per CPU-second of this process.
    """
    best = float("inf")
    for _ in range(repeats):
        start = clock()
        run()
        best = min(best, clock() - start)
    return count / best


def best_rates(runs: Sequence[Callable[[], object]], count: int, repeats: int = 3) -> list[float]:
    """Like ``best_rate`` for several runs, taking turns (a, b, a, b, ...): a machine that
    gets busier or quieter during the measurement then affects every side alike."""
    best = [float("inf")] * len(runs)
    for _ in range(repeats):
        for i, run in enumerate(runs):
            start = time.perf_counter()
            run()
            best[i] = min(best[i], time.perf_counter() - start)
    return [count / elapsed for elapsed in best]


def median_ms(run: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``run`` in milliseconds."""
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def percentile(samples: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile: the smallest sample with ``fraction`` of them at or below."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def human_rate(per_second: float, unit: str = "/s") -> str:
    """``1.23 M/s``-style text for details."""
    for scale, prefix in ((1e6, "M"), (1e3, "k")):
        if per_second >= scale:
            return f"{per_second / scale:.2f} {prefix}{unit}"
    return f"{per_second:.1f} {unit}"
