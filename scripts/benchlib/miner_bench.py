"""Figure 4: the node's miner processes against the bare midstate loop in this process."""

from __future__ import annotations

import time

from benchlib.baselines import UNREACHABLE, bare_midstate_rate
from benchlib.report import Figure, Goal
from benchlib.timing import human_rate
from consensus.block import Header
from node.miner import Miner, Template

__all__ = ["bench_miner"]

SECTION = "node"
BARE_HASHES = 1_000_000
MEASURE_SECONDS = 5.0
WARMUP_TIMEOUT = 30.0
GOALS = {1: Goal(">=", 0.9), 2: Goal(">=", 1.6)}
"""The bench's own goals: one worker as fast as ``solve``; two close to two cores' worth."""


def _template() -> Template:
    header = Header(
        version=1,
        height=1,
        prev_hash="11" * 32,
        merkle_root="22" * 32,
        timestamp=1_795_824_000_000,
        bits=0x1D00FFFF,
        miner="33" * 32,
        nonce=0,
    )
    return Template(job_id=1, header=header, target=UNREACHABLE)


def _next_report(miner: Miner, after: int, deadline: float) -> tuple[float, int]:
    """Wait for the hash counter to move past ``after``: the time and count of that report."""
    while time.monotonic() < deadline:
        total = miner.total_hashes
        if total > after:
            return time.monotonic(), total
        time.sleep(0.005)
    raise TimeoutError("the miner reported no hashes in time")


def miner_rate(workers: int) -> tuple[float, float]:
    """Hashes/s from the miner's counter over ``MEASURE_SECONDS`` once every worker hashes,
    and its own ``hash_rate()`` at the end (a 5 s window)."""
    with Miner(workers) as miner:
        miner.set_template(_template())
        deadline = time.monotonic() + WARMUP_TIMEOUT
        _next_report(miner, 0, deadline)
        time.sleep(1.0)  # the first report came from one worker: let the others start too
        start, hashes0 = _next_report(miner, miner.total_hashes, deadline)
        time.sleep(MEASURE_SECONDS)
        end, hashes1 = _next_report(miner, miner.total_hashes, time.monotonic() + 5.0)
        reported = miner.hash_rate()
    return (hashes1 - hashes0) / (end - start), reported


def bench_miner() -> list[Figure]:
    bare = bare_midstate_rate(BARE_HASHES)
    figures = []
    for workers in (1, 2):
        rate, reported = miner_rate(workers)
        detail = (
            f"miner {human_rate(rate, 'H/s')} (its hash_rate(): {human_rate(reported, 'H/s')}), "
            f"bare loop {human_rate(bare, 'H/s')}; {MEASURE_SECONDS:.0f} s after warm-up"
        )
        name = f"Miner({workers}) hashes/s / bare loop (1 thread)"
        figures.append(
            Figure(f"4{'ab'[workers - 1]}", SECTION, name, rate / bare, "x", GOALS[workers], detail)
        )
    return figures
