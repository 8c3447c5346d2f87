"""Figure 4: the node's miner processes against the bare midstate loop in this process."""

from __future__ import annotations

import time
from dataclasses import dataclass

from benchlib.baselines import UNREACHABLE, bare_midstate_rate, bare_midstate_run
from benchlib.procs import process_cpu_seconds
from benchlib.report import Figure, Goal
from benchlib.timing import best_rate, human_rate
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


@dataclass(frozen=True)
class MinerRun:
    rate: float
    """Hashes/s from the miner's own counter over the measurement."""
    reported: float
    """``Miner.hash_rate()`` at the end (its 5 s window)."""
    cpu_shares: list[float]
    """Each worker's CPU seconds per second: below 1.0 the machine, not the code, held it."""

    def describe(self, bare: float, bare_cpu: float) -> str:
        shares = " + ".join(f"{s:.2f}" for s in self.cpu_shares) or "?"
        cpu = sum(self.cpu_shares)
        per_cpu = f"{human_rate(self.rate / cpu, 'H')} per CPU-second" if cpu else "?"
        return (
            f"miner {human_rate(self.rate, 'H/s')} (its hash_rate(): "
            f"{human_rate(self.reported, 'H/s')}), bare loop {human_rate(bare, 'H/s')} "
            f"({human_rate(bare_cpu, 'H')} per CPU-second); "
            f"workers got {shares} CPUs, {per_cpu}; goal: the bench's own"
        )


def _cpu_of(pids: list[int]) -> list[float]:
    times = [process_cpu_seconds(pid) for pid in pids]
    return [t for t in times if t is not None]


def miner_run(workers: int) -> MinerRun:
    """Measure ``MEASURE_SECONDS`` of hashing once every worker has started."""
    with Miner(workers) as miner:
        miner.set_template(_template())
        deadline = time.monotonic() + WARMUP_TIMEOUT
        _next_report(miner, 0, deadline)
        time.sleep(1.0)  # the first report came from one worker: let the others start too
        start, hashes0 = _next_report(miner, miner.total_hashes, deadline)
        cpu0 = _cpu_of(miner.pids)
        time.sleep(MEASURE_SECONDS)
        end, hashes1 = _next_report(miner, miner.total_hashes, time.monotonic() + 5.0)
        cpu1 = _cpu_of(miner.pids)
        reported = miner.hash_rate()
    elapsed = end - start
    shares = [(b - a) / elapsed for a, b in zip(cpu0, cpu1, strict=False)]
    return MinerRun((hashes1 - hashes0) / elapsed, reported, shares)


def bench_miner() -> list[Figure]:
    """Figure 4: ``Miner`` with 1 and 2 workers against the bare loop in this process."""
    bare = bare_midstate_rate(BARE_HASHES)
    bare_cpu = best_rate(bare_midstate_run(BARE_HASHES), BARE_HASHES, 2, time.process_time)
    figures = []
    for workers in (1, 2):
        run = miner_run(workers)
        key = f"4{'ab'[workers - 1]}"
        name = f"Miner({workers}) hashes/s / bare loop (1 thread)"
        figures.append(
            Figure(
                key,
                SECTION,
                name,
                run.rate / bare,
                "x",
                GOALS[workers],
                run.describe(bare, bare_cpu),
            )
        )
    return figures
