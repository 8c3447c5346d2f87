"""The node's CPU-heavy checks, in worker processes: off the node's GIL.

Signature checks first. Ed25519 verification lets go of the GIL, but each check must take
it back to return, and a thread that waits for it while another runs Python waits up to
the interpreter's switch interval (5 ms) each time, for a check of 0.15 ms: here, two
threads verifying beside one busy Python thread managed 464 signatures/s, against 11,300
alone. While a node syncs, its event loop and chain worker run Python most of the time,
so verify threads spent more time waiting than verifying. Parsing a fetched run of blocks
(JSON, the schema of every transaction, their canonical bytes) was the event loop's
largest cost, and it held the GIL the chain worker was waiting for.

Worker processes each have a GIL of their own. They get plain values (signature jobs, the
raw body of a peer's run of blocks) and send back answers (problems, parsed and checked
blocks) by pickle. They run at a lower CPU priority than the node: the chain worker,
which connects blocks one group at a time, is what a sync waits for, and it should have
a core whenever it can use one (a 10,000-block join took 33 s so, against 35-37 s at the
same priority). A worker that dies (killed,
out of memory) breaks the pool; the pool is then replaced and the work done again (in
this process until the new pool answers), so a lost worker costs time, never a wrong
answer.
"""

from __future__ import annotations

import asyncio
import json
import logging
import multiprocessing
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, TypeVar

from consensus.block import Block
from consensus.errors import InvalidBlock, InvalidTx
from consensus.keys import signature_problem
from consensus.params import ConsensusParams
from consensus.tx import check_tx
from consensus.validation import signatures_worth_checking
from node.errors import ShuttingDown

__all__ = [
    "BadRun",
    "BlockRun",
    "CheckPool",
    "read_block_run",
    "signature_problems",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

SignatureJob = tuple[str, str, bytes]
"""Signer (hex), signature (hex) and the signed message: ``consensus.tx.signature_job``."""

MIN_CHUNK = 16
"""Fewer jobs than this are not split between workers: a chunk costs a round trip."""
INLINE_JOBS = 2
"""So few jobs are checked on the caller's thread: a round trip to a worker costs more
than the checks (``POST /v1/transactions`` one at a time: 346-389 requests/s so, against
302-312 through the workers)."""
WORKER_NICE = 10
"""How much lower the workers' CPU priority is than the node's (``os.nice``)."""


class BadRun(Exception):
    """A peer's run of blocks is malformed, or not what was asked for: ``reason``."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class BlockRun:
    """Blocks as a peer sent them, and for each the txids whose ``check_tx`` passed."""

    blocks: list[Block]
    verified: list[frozenset[str]]


def signature_problems(jobs: Sequence[SignatureJob]) -> list[str | None]:
    """``signature_problem`` of each job (in a worker)."""
    return [signature_problem(*job) for job in jobs]


def read_block_run(body: bytes, hashes: Sequence[str], params: ConsensusParams) -> BlockRun:
    """Parse the answer to ``GET /p2p/blocks?hash=..`` (in a worker): the blocks, which must
    be a prefix of ``hashes``, and the transactions of each that pass ``check_tx``. A
    failed signature is only left out of ``verified``: ``check_block`` then rejects the
    block with the transaction's own code. Raises ``BadRun``."""
    try:
        answer = json.loads(body)
    except (ValueError, RecursionError):
        raise BadRun("malformed blocks answer: not JSON") from None
    objs = answer.get("blocks") if isinstance(answer, dict) else None
    if not isinstance(objs, list) or len(objs) > len(hashes):
        raise BadRun("malformed blocks answer")
    blocks: list[Block] = []
    for obj, block_hash in zip(objs, hashes, strict=False):
        try:
            block = Block.from_json(obj)
        except InvalidBlock as exc:
            raise BadRun(f"{exc.code}: {exc.message}") from None
        if block.hash != block_hash:
            raise BadRun(f"asked for block {block_hash}, got {block.hash}")
        blocks.append(block)
    return BlockRun(blocks, [_passing(block, params) for block in blocks])


def _passing(block: Block, params: ConsensusParams) -> frozenset[str]:
    if not signatures_worth_checking(block, params):
        return frozenset()
    passed: list[str] = []
    for tx in block.transactions:
        try:
            check_tx(tx, params)
        except InvalidTx:
            continue
        passed.append(tx.txid)
    return frozenset(passed)


def _lower_priority() -> None:
    os.nice(WORKER_NICE)


class CheckPool:
    """``workers`` processes for the checks; ``start`` before use, ``close`` after."""

    def __init__(self, workers: int, params: ConsensusParams) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers = workers
        self.params = params
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload([__name__])
        self._pool: ProcessPoolExecutor | None = None
        self._ready: ProcessPoolExecutor | None = None
        """The pool once its first worker answered; until then, work runs in this process."""
        self._closed = False

    def start(self) -> None:
        """Start the workers, in the background: the node does not wait for them.

        They are forked by a fork server, one process that imports the checks once for
        all of them (spawned, each worker imported them itself: 0.3 s of CPU apiece while
        the node was starting). Until the first worker answers, work runs in this process
        on a thread: a join's first runs of blocks would otherwise wait that long for it,
        and a node started with nothing to do never waits at all."""
        self._pool = self._new_pool()

    def close(self) -> None:
        """Stop the workers; work still queued is cancelled. Idempotent."""
        self._closed = True
        pool, self._pool, self._ready = self._pool, None, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    async def signature_problems(self, jobs: Sequence[SignatureJob]) -> list[str | None]:
        """``signature_problem`` of each job, in order, spread over the workers."""
        if self._closed:
            raise ShuttingDown("the node is shutting down")
        if len(jobs) <= INLINE_JOBS:
            return signature_problems(jobs)
        size = max(MIN_CHUNK, -(-len(jobs) // self.workers))
        chunks = [jobs[i : i + size] for i in range(0, len(jobs), size)]
        done = await asyncio.gather(*(self._run(signature_problems, chunk) for chunk in chunks))
        return [problem for chunk in done for problem in chunk]

    async def read_blocks(self, body: bytes, hashes: Sequence[str]) -> BlockRun:
        """``read_block_run`` in a worker; raises ``BadRun``."""
        return await self._run(read_block_run, body, hashes, self.params)

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        pool = self._running_pool()
        if pool is not self._ready:
            return await asyncio.to_thread(fn, *args)
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(pool, fn, *args)
        except BrokenProcessPool:
            log.warning("a check worker died: starting new ones")
            self._replace(pool)
            return await asyncio.to_thread(fn, *args)

    def _running_pool(self) -> Executor:
        if self._closed:
            raise ShuttingDown("the node is shutting down")
        if self._pool is None:
            raise RuntimeError("CheckPool.start() was not called")
        return self._pool

    def _replace(self, broken: Executor) -> None:
        """Start a new pool in place of ``broken`` (once, however many callers saw it)."""
        if self._pool is broken:
            broken.shutdown(wait=False, cancel_futures=True)
            self._pool, self._ready = self._new_pool(), None

    def _new_pool(self) -> ProcessPoolExecutor:
        """A pool whose first worker starts on a thread of its own; it is ``_ready`` once
        that one has answered. The rest are forked as work finds the others busy, in
        milliseconds once the fork server is up."""
        pool = ProcessPoolExecutor(
            self.workers, mp_context=self._context, initializer=_lower_priority
        )
        threading.Thread(
            target=self._warm_up, args=(pool,), name="check-warm-up", daemon=True
        ).start()
        return pool

    def _warm_up(self, pool: ProcessPoolExecutor) -> None:
        try:
            pool.submit(signature_problems, []).result()
        except Exception as exc:
            if self._pool is pool:  # else closed or replaced meanwhile: never used
                log.warning("check workers did not start (%s): checks run in the node", exc)
            return
        if self._pool is pool:
            self._ready = pool
