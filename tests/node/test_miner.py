"""The background miner: worker processes, template switches, stale solutions, clean exits."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consensus.block import Header
from consensus.params import REGTEST
from consensus.pow import MAX_NONCE, bits_to_target, check_pow
from node.miner import (
    Exhausted,
    Miner,
    MinerFailedError,
    NonceRangeExhaustedError,
    Solution,
    Template,
    _split,
    mine_once,
)
from node.miner_worker import worker_main

ROOT = Path(__file__).resolve().parents[2]
EASY = 2**244  # about 4096 hashes a solution: milliseconds for one worker
INSTANT = 2**255  # about 2 hashes
NEVER = 0  # no hash is zero: keeps workers busy
TIMEOUT = 10.0


def header(timestamp: int = 1_795_824_000_000) -> Header:
    return Header(
        version=1,
        height=1,
        prev_hash="ab" * 32,
        merkle_root="cd" * 32,
        timestamp=timestamp,
        bits=REGTEST.pow_limit_bits,
        miner="00" * 32,
        nonce=0,
    )


def template(job_id: int, target: int = EASY, **kwargs: int) -> Template:
    # A distinct timestamp per job gives each job its own prefix, so a solution of one job
    # does not meet another's target by accident.
    return Template(
        job_id, header(1_795_824_000_000 + job_id), target, f"payload-{job_id}", **kwargs
    )


def assert_solves(solution: Solution | None, job: Template) -> None:
    assert isinstance(solution, Solution)
    assert solution.job_id == job.job_id
    assert solution.template is job
    assert solution.header == job.header.with_nonce(solution.nonce)
    digest = hashlib.sha256(job.header.prefix() + solution.nonce.to_bytes(8, "big")).digest()
    assert int.from_bytes(digest, "big") <= job.target
    assert solution.hashes >= 1


def is_running(pid: int) -> bool:
    """True unless the process is gone or a zombie (PID 1 here may not reap orphans)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def wait_until(predicate: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def hashes_settled(miner: Miner, quiet: float = 0.2) -> bool:
    before = miner.total_hashes
    time.sleep(quiet)
    return miner.total_hashes == before


@pytest.fixture
def make_miner() -> Iterator[Callable[[int], Miner]]:
    miners: list[Miner] = []

    def make(workers: int) -> Miner:
        miner = Miner(workers)
        miners.append(miner)
        miner.start()
        return miner

    yield make
    for miner in miners:
        miner.stop()
    assert multiprocessing.active_children() == []


# --- mine_once and helpers ------------------------------------------------------------------


def test_mine_once_meets_the_regtest_target() -> None:
    bits = REGTEST.pow_limit_bits
    mined = mine_once(header(), bits_to_target(bits))
    check_pow(bytes.fromhex(mined.hash), bits, REGTEST)
    assert mined.with_nonce(0) == header()


def test_mine_once_returns_the_first_fitting_nonce_from_start() -> None:
    target, start = 2**248, 1_000
    mined = mine_once(header(), target, start=start)
    assert int(mined.hash, 16) <= target
    for nonce in range(start, mined.nonce):
        assert int(header().with_nonce(nonce).hash, 16) > target


def test_mine_once_raises_when_the_range_has_no_solution() -> None:
    with pytest.raises(NonceRangeExhaustedError):
        mine_once(header(), NEVER, start=10, end=50_010)


@pytest.mark.parametrize(
    ("target", "start", "end"), [(-1, 0, 1), (2**256, 0, 1), (1, 5, 4), (1, 0, MAX_NONCE + 1)]
)
def test_template_rejects_bad_targets_and_ranges(target: int, start: int, end: int) -> None:
    with pytest.raises(ValueError):
        Template(1, header(), target, nonce_start=start, nonce_end=end)


@given(
    start=st.integers(0, MAX_NONCE),
    length=st.integers(0, 10**6),
    parts=st.integers(1, 16),
)
def test_split_cuts_the_range_into_disjoint_covering_slices(
    start: int, length: int, parts: int
) -> None:
    slices = _split(start, start + length, parts)
    assert len(slices) == parts
    assert slices[0][0] == start
    assert slices[-1][1] == start + length
    for (_, end), (next_start, _) in itertools.pairwise(slices):
        assert end == next_start
    assert all(lo <= hi for lo, hi in slices)


# --- the Miner -----------------------------------------------------------------------------


@pytest.mark.parametrize("workers", [1, 2])
def test_miner_solves_successive_templates(
    make_miner: Callable[[int], Miner], workers: int
) -> None:
    miner = make_miner(workers)
    assert len(miner.pids) == workers
    for job_id in range(1, 4):
        job = template(job_id)
        miner.set_template(job)
        solution = miner.wait_solution(TIMEOUT)
        assert_solves(solution, job)
        assert solution is not None and 0 <= solution.worker < workers
        assert not miner.mining  # a job yields one block, then the workers idle
    assert miner.total_hashes > 0


def test_solutions_of_a_replaced_template_are_never_returned(
    make_miner: Callable[[int], Miner],
) -> None:
    miner = make_miner(2)
    old = template(1, INSTANT)
    miner.set_template(old)
    # The first report of a worker is its solution (it carries the hash count): once hashes
    # are counted, a solution of the old job sits in the miner, not yet taken.
    wait_until(lambda: miner.total_hashes > 0)
    for job_id in range(2, 30):  # a burst of replacements, each superseding the last
        miner.set_template(template(job_id))
    new = template(30)
    miner.set_template(new)
    assert_solves(miner.wait_solution(TIMEOUT), new)
    assert miner.wait_solution(0.2) is None  # the other worker's find of the same job too


def test_none_template_pauses_and_a_new_one_resumes(make_miner: Callable[[int], Miner]) -> None:
    miner = make_miner(2)
    miner.set_template(template(1, NEVER))
    wait_until(lambda: miner.total_hashes > 0)
    assert miner.mining
    assert miner.hash_rate() > 0
    miner.set_template(template(2, INSTANT))
    miner.set_template(None)  # the solution of job 2 (if found already) is stale now
    assert not miner.mining
    assert miner.wait_solution(0.5) is None
    # Each worker reports its last hashes as it pauses; after that the count stays put.
    wait_until(lambda: hashes_settled(miner))
    paused_total = miner.total_hashes
    time.sleep(0.3)
    assert miner.total_hashes == paused_total
    job = template(3)
    miner.set_template(job)
    assert_solves(miner.wait_solution(TIMEOUT), job)


@pytest.mark.parametrize("workers", [1, 2])
def test_an_exhausted_range_is_reported_once_per_job(
    make_miner: Callable[[int], Miner], workers: int
) -> None:
    miner = make_miner(workers)
    job = template(7, NEVER, nonce_start=100, nonce_end=100 + 3 * 20_000 + 17)
    miner.set_template(job)
    event = miner.wait_event(TIMEOUT)
    assert event == Exhausted(7, job)
    assert miner.wait_event(0.2) is None


def test_stop_reaps_every_worker_and_the_miner_restarts(
    make_miner: Callable[[int], Miner],
) -> None:
    miner = make_miner(2)
    miner.set_template(template(1, NEVER))
    wait_until(lambda: miner.total_hashes > 0)
    pids = miner.pids
    assert all(is_running(pid) for pid in pids)
    miner.stop()
    assert multiprocessing.active_children() == []
    assert not any(is_running(pid) for pid in pids)
    assert not miner.running and miner.pids == []
    miner.stop()  # idempotent
    miner.start()
    assert set(miner.pids).isdisjoint(pids)
    job = template(2)
    miner.set_template(job)
    assert_solves(miner.wait_solution(TIMEOUT), job)


async def test_next_solution_awaits_without_blocking_the_loop(
    make_miner: Callable[[int], Miner],
) -> None:
    miner = make_miner(2)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.005)

    ticking = asyncio.create_task(ticker())
    waiting = asyncio.create_task(miner.next_solution())
    await asyncio.sleep(0.2)
    ticking.cancel()
    assert not waiting.done()
    assert ticks >= 5  # the loop kept running while the miner was awaited
    job = template(1)
    miner.set_template(job)
    assert_solves(await asyncio.wait_for(waiting, TIMEOUT), job)


async def test_a_cancelled_wait_loses_no_solution(make_miner: Callable[[int], Miner]) -> None:
    miner = make_miner(1)
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(miner.next_solution(), 0.05)
    job = template(1)
    miner.set_template(job)
    assert_solves(await asyncio.wait_for(miner.next_solution(), TIMEOUT), job)


async def test_waiting_fails_once_every_worker_has_died(
    make_miner: Callable[[int], Miner],
) -> None:
    miner = make_miner(2)
    first, second = miner.pids
    os.kill(first, signal.SIGKILL)
    job = template(1)
    miner.set_template(job)
    assert_solves(await asyncio.wait_for(miner.next_solution(), TIMEOUT), job)
    os.kill(second, signal.SIGKILL)
    with pytest.raises(MinerFailedError):
        await asyncio.wait_for(miner.next_solution(), TIMEOUT)
    with pytest.raises(MinerFailedError):
        miner.wait_solution(0)


# --- no orphans ----------------------------------------------------------------------------


@pytest.mark.parametrize("busy", [True, False])
def test_a_worker_exits_when_its_control_pipe_closes(busy: bool) -> None:
    context = multiprocessing.get_context("spawn")
    control_r, control_w = context.Pipe(duplex=False)
    reports_r, reports_w = context.Pipe(duplex=False)
    worker = context.Process(target=worker_main, args=(control_r, reports_w, os.getpid()))
    worker.start()
    control_r.close()
    reports_w.close()
    try:
        if busy:
            control_w.send(("job", 1, header().prefix(), NEVER, 0, MAX_NONCE))
            assert reports_r.poll(TIMEOUT)
            assert reports_r.recv()[0] == "hashes"
        control_w.close()  # what the kernel does for a node killed with SIGKILL
        worker.join(TIMEOUT)
        assert worker.exitcode == 0
    finally:
        if worker.is_alive():
            worker.kill()
            worker.join()
        worker.close()
        reports_r.close()


NODE = textwrap.dedent(
    """
    import sys, time
    from tests.node.test_miner import template, NEVER
    from node.miner import Miner

    miner = Miner(2)
    miner.start()
    miner.set_template(template(1, NEVER))
    while miner.total_hashes == 0:
        time.sleep(0.01)
    print(*miner.pids, flush=True)
    time.sleep(60)
    """
)


def test_workers_die_with_a_killed_node() -> None:
    node = subprocess.Popen(
        [sys.executable, "-c", NODE], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert node.stdout is not None
        pids = [int(pid) for pid in node.stdout.readline().split()]
        assert len(pids) == 2 and all(is_running(pid) for pid in pids)
    finally:
        node.send_signal(signal.SIGKILL)
        node.wait()
        if node.stdout is not None:
            node.stdout.close()
    wait_until(lambda: not any(is_running(pid) for pid in pids))
