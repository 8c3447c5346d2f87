"""Figures of a simulated run: propagation, stale blocks, bytes, join and heal times.

``reach`` is the time from a block's finding until a share of the nodes held it (its
body stored: on the active chain or on a side branch). Propagation is measured on the
blocks that ended on the best chain (every node holds those); a stale block, on a side
branch, is not relayed and so reaches few nodes by design.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from node.sim.events import US_PER_MS

__all__ = ["SHARES", "percentile", "reach_times", "summarize_reach"]

SHARES = (("50", 0.50), ("90", 0.90), ("99", 0.99))


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile (``share`` in 0..1) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


def reach_times(mined_at: int, held: Sequence[int], nodes: int) -> dict[str, float] | None:
    """Milliseconds until each share of ``nodes`` held the block; None if it never did."""
    if len(held) < nodes:
        return None
    ordered = sorted(held)
    reach = {
        key: (ordered[max(1, math.ceil(share * nodes)) - 1] - mined_at) / US_PER_MS
        for key, share in SHARES
    }
    # Decker and Wattenhofer's effective propagation time: the integral over time of the
    # share of nodes still without the block, which is the mean delay over the nodes.
    reach["mean"] = (sum(ordered[:nodes]) / nodes - mined_at) / US_PER_MS
    return reach


def summarize_reach(
    per_block: Sequence[dict[str, float]],
) -> tuple[dict[str, float], dict[str, float]]:
    """(median over blocks, p90 over blocks) of each share's reach time and of the mean
    delay over the nodes ("mean"), in ms."""
    keys = [key for key, _ in SHARES] + ["mean"]
    if not per_block:
        empty = dict.fromkeys(keys, 0.0)
        return empty, dict(empty)
    median = {key: round(statistics.median(b[key] for b in per_block), 1) for key in keys}
    p90 = {key: round(percentile([b[key] for b in per_block], 0.9), 1) for key in keys}
    return median, p90
