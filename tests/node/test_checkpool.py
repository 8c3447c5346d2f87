"""The worker-process checks: what a worker answers, and a pool that survives its workers."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from typing import Any

import pytest

from consensus.block import Block, Header
from consensus.genesis import genesis_header
from consensus.keys import signature_problem
from consensus.merkle import merkle_root
from consensus.params import DEVNET, REGTEST
from consensus.tx import Transaction, signature_job
from node import checkpool
from node.checkpool import (
    INLINE_JOBS,
    BadRun,
    CheckPool,
    read_block_run,
    signature_problems,
)
from node.errors import ShuttingDown
from tests.consensus.conftest import ALICE, BOB, dataset_payload, make_tx
from tests.node.conftest import solved_header

GENESIS = genesis_header(REGTEST)


def forged(tx: Transaction) -> Transaction:
    """``tx`` with another transaction's signature: same txid, signature fails."""
    other = make_tx(BOB, "dataset", dataset_payload("someone else"))
    return Transaction.from_json({**tx.to_json(), "signature": other.signature})


def solved(parent: Header, txs: Sequence[Transaction], *, nonce_ok: bool = True) -> Block:
    """A block on ``parent`` whose proof of work passes (or, ``nonce_ok=False``, fails)."""
    root = merkle_root([tx.leaf_bytes for tx in txs]).hex()
    return Block(solved_header(parent, root, nonce_ok=nonce_ok), tuple(txs))


def body(*blocks: Block | object) -> bytes:
    objs = [b.to_json() if isinstance(b, Block) else b for b in blocks]
    return json.dumps({"blocks": objs}).encode()


@pytest.fixture(scope="module")
def chain() -> list[Block]:
    """Two blocks of three records each; the second block's last signature is forged."""
    first = [make_tx(ALICE, "dataset", dataset_payload(f"a{i}"), nonce=i) for i in range(3)]
    second = [make_tx(BOB, "dataset", dataset_payload(f"b{i}"), nonce=i) for i in range(3)]
    second[2] = forged(second[2])
    one = solved(GENESIS, first)
    return [one, solved(one.header, second)]


# --- in this process ------------------------------------------------------------------------


def test_a_run_comes_back_parsed_with_the_passing_txids(chain: list[Block]) -> None:
    run = read_block_run(body(*chain), [b.hash for b in chain], REGTEST)
    assert run.blocks == chain
    assert run.verified[0] == {tx.txid for tx in chain[0].transactions}
    good, bad = chain[1].transactions[:2], chain[1].transactions[2]
    assert run.verified[1] == {tx.txid for tx in good}
    assert bad.txid not in run.verified[1]


def test_a_prefix_of_the_hashes_asked_for_is_a_run(chain: list[Block]) -> None:
    run = read_block_run(body(chain[0]), [b.hash for b in chain], REGTEST)
    assert run.blocks == chain[:1]
    assert len(run.verified) == 1


def test_transactions_of_another_network_do_not_pass(chain: list[Block]) -> None:
    run = read_block_run(body(chain[0]), [chain[0].hash], DEVNET)
    assert run.verified == [frozenset()]


def test_no_signature_is_checked_under_a_header_without_its_proof_of_work() -> None:
    txs = [make_tx(ALICE, "dataset", dataset_payload("pow"))]
    block = solved(GENESIS, txs, nonce_ok=False)
    run = read_block_run(body(block), [block.hash], REGTEST)
    assert run.blocks == [block]
    assert run.verified == [frozenset()]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"<html>", "not JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "not JSON"),
        (b'{"blocks": {}}', "malformed blocks answer"),
        (b'{"other": []}', "malformed blocks answer"),
        (b"[]", "malformed blocks answer"),
        (json.dumps({"blocks": [{"header": {}}]}).encode(), "bad-block"),
    ],
)
def test_a_malformed_answer_is_a_bad_run(chain: list[Block], raw: bytes, reason: str) -> None:
    with pytest.raises(BadRun) as caught:
        read_block_run(raw, [chain[0].hash], REGTEST)
    assert reason in caught.value.reason


def test_more_blocks_than_asked_for_is_a_bad_run(chain: list[Block]) -> None:
    with pytest.raises(BadRun, match="malformed"):
        read_block_run(body(*chain), [chain[0].hash], REGTEST)


def test_a_block_other_than_the_one_asked_for_is_a_bad_run(chain: list[Block]) -> None:
    with pytest.raises(BadRun, match=f"asked for block {chain[0].hash}, got {chain[1].hash}"):
        read_block_run(body(chain[1]), [chain[0].hash], REGTEST)


def test_a_bad_transaction_is_a_bad_run_naming_its_code(chain: list[Block]) -> None:
    obj = chain[0].to_json()
    obj["transactions"][0]["nonce"] = "one"
    with pytest.raises(BadRun, match="bad-tx-schema"):
        read_block_run(body(obj), [chain[0].hash], REGTEST)


def test_signature_problems_answer_like_signature_problem(chain: list[Block]) -> None:
    txs = list(chain[1].transactions)
    bad_signer = replace(txs[0], signer="00" * 32)  # a small-order point
    jobs = [signature_job(tx) for tx in [*txs, bad_signer]]
    problems = signature_problems(jobs)
    assert problems == [signature_problem(*job) for job in jobs]
    assert problems[:2] == [None, None]
    assert problems[2] == "signature does not verify for signer and body"
    assert problems[3] is not None and "small-order" in problems[3]


# --- in worker processes --------------------------------------------------------------------


async def wait_until(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} not within {timeout} s"
        await asyncio.sleep(0.02)


async def until_ready(checks: CheckPool) -> None:
    """Wait for the first worker to answer; work sent before then runs in this process."""
    await wait_until(lambda: checks._ready is checks._pool, "the check workers' first answer")


@pytest.fixture
async def pool() -> AsyncIterator[CheckPool]:
    checks = CheckPool(2, REGTEST)
    checks.start()
    try:
        await until_ready(checks)
        yield checks
    finally:
        checks.close()


async def test_the_pool_answers_every_job_in_order_across_chunks(pool: CheckPool) -> None:
    txs = [make_tx(ALICE, "dataset", dataset_payload(f"p{i}"), nonce=i) for i in range(40)]
    txs[7], txs[33] = forged(txs[7]), forged(txs[33])
    problems = await pool.signature_problems([signature_job(tx) for tx in txs])
    assert [i for i, p in enumerate(problems) if p is not None] == [7, 33]
    assert await pool.signature_problems([]) == []


async def test_the_pool_reads_block_runs_and_raises_bad_runs(
    pool: CheckPool, chain: list[Block]
) -> None:
    run = await pool.read_blocks(body(*chain), [b.hash for b in chain])
    assert run.blocks == chain
    assert run.verified == read_block_run(body(*chain), [b.hash for b in chain], REGTEST).verified
    with pytest.raises(BadRun, match="not JSON"):
        await pool.read_blocks(b"nope", [chain[0].hash])


async def test_work_runs_in_the_workers_once_they_answer(pool: CheckPool) -> None:
    assert await pool._run(os.getpid) != os.getpid()


async def test_work_runs_in_this_process_until_a_worker_answers(
    monkeypatch: pytest.MonkeyPatch, chain: list[Block]
) -> None:
    monkeypatch.setattr(CheckPool, "_warm_up", lambda self, pool: None)  # never ready
    checks = CheckPool(2, REGTEST)
    checks.start()
    try:
        assert await checks._run(os.getpid) == os.getpid()
        hashes = [b.hash for b in chain]
        run = await checks.read_blocks(body(*chain), hashes)
        assert run == read_block_run(body(*chain), hashes, REGTEST)
        assert checks._pool is not None and not checks._pool._processes  # none was started
    finally:
        checks.close()


class _WorkersDie(ProcessPoolExecutor):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **{**kwargs, "initializer": os.abort})


async def test_workers_that_cannot_start_leave_the_checks_to_this_process(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(checkpool, "ProcessPoolExecutor", _WorkersDie)
    checks = CheckPool(1, REGTEST)
    checks.start()
    try:
        await wait_until(lambda: "did not start" in caplog.text, "the warning")
        assert checks._ready is None
        assert await checks._run(os.getpid) == os.getpid()
    finally:
        checks.close()


async def test_workers_run_at_a_lower_priority(pool: CheckPool) -> None:
    # Two jobs at once: each worker is started when work finds the others busy.
    await asyncio.gather(*(pool._run(time.sleep, 0.2) for _ in range(2)))
    workers = list(pool._pool._processes) if pool._pool is not None else []
    assert len(workers) == 2
    lower = min(os.getpriority(os.PRIO_PROCESS, 0) + 10, 19)
    assert [os.getpriority(os.PRIO_PROCESS, pid) for pid in workers] == [lower, lower]


async def test_a_killed_worker_costs_a_new_pool_not_an_answer(pool: CheckPool) -> None:
    assert pool._pool is not None
    for pid in list(pool._pool._processes):
        os.kill(pid, signal.SIGKILL)
    txs = [make_tx(ALICE, "dataset", dataset_payload(f"after{i}")) for i in range(3)]
    jobs = [signature_job(tx) for tx in [txs[0], forged(txs[1]), txs[2]]]
    assert len(jobs) > INLINE_JOBS  # so they go to the (dead) workers
    problems = await pool.signature_problems(jobs)
    assert [p is None for p in problems] == [True, False, True]
    await until_ready(pool)  # a new pool, whose workers answer in turn
    assert await pool._run(os.getpid) != os.getpid()
    assert await pool.signature_problems(jobs) == problems


async def test_a_job_or_two_is_checked_without_a_round_trip(
    pool: CheckPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_workers(*args: object) -> None:
        raise AssertionError("a worker was asked")

    monkeypatch.setattr(pool, "_run", no_workers)
    tx = make_tx(ALICE, "dataset", dataset_payload("inline"))
    jobs = [signature_job(tx), signature_job(forged(tx))][:INLINE_JOBS]
    assert [p is None for p in await pool.signature_problems(jobs)] == [True, False]


async def test_a_closed_pool_refuses_work() -> None:
    checks = CheckPool(1, REGTEST)
    checks.start()
    checks.close()
    checks.close()
    with pytest.raises(ShuttingDown):
        await checks.signature_problems([("00" * 32, "00" * 64, b"")])
    with pytest.raises(ValueError, match="workers"):
        CheckPool(0, REGTEST)
