"""The node: chain state, mempool, storage and miner behind one facade.

Every change to the chain or the mempool runs on one thread, the *chain worker*, in
submission order; the event loop only awaits it. Reads use a pool of read-only SQLite
connections from any thread (WAL lets them run beside the writer). The miner's worker
processes hash (``node.mining`` keeps them on a template); a found block comes back
through ``submit_block`` like any other.

The node imports neither the peer-to-peer layer nor mining: they hold it through
``node.ports.ChainPort`` and subscribe to its events (Bitcoin's ``CValidationInterface``):
``block_listeners`` (blocks joined the active chain), ``tip_listeners`` (the tip moved),
``tx_listeners`` (the mempool gained transactions) and ``sync_listeners`` (``syncing``
flipped); ``services`` start and stop with the node, ``gauges`` refresh with its metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from queue import Empty, SimpleQueue
from typing import Any, ParamSpec, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from consensus.block import ZERO_HASH, Block
from consensus.chain import Status
from consensus.errors import InvalidTx, RejectError
from consensus.genesis import genesis_header
from consensus.keys import private_key_from_pem, public_key_hex
from consensus.params import ConsensusParams
from consensus.tx import (
    Transaction,
    bad_signature,
    check_tx_fields,
    signature_job,
)
from consensus.validation import signatures_worth_checking
from node.chainstate import BlockOutcome, BlockResult, ChainState, Reorg
from node.checkpool import CheckPool
from node.config import Settings
from node.errors import MempoolFull, ShuttingDown
from node.groupcommit import GroupCommit
from node.mempool import Mempool
from node.metrics import Metrics
from node.ports import Service
from node.store import Store, StoreReader

__all__ = ["Node", "TxResult", "wall_ms"]

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")

HELD_RETRY_S = 5.0
CHECK_WORKERS = min(8, max(2, len(os.sched_getaffinity(0))))
"""Signature-check processes: one a core the node may run on, at least 2 and at most 8
(each is a Python interpreter of its own, about 40 MB)."""
MAX_HELD_BLOCKS = 64
MAX_TX_GROUP = 20_000
MAX_BLOCK_GROUP = 512
"""Blocks stored and activated in one storage transaction, at most (a synced run's
commit writes each changed page once, so bigger groups cost less per block: in a
10,000-block join, 512 in place of 256 halved the bytes written and took 7% off the
block phase)."""
SYNC_LINGER_S = 0.3
"""How long a synced run may wait for others to fill its commit (``GroupCommit``): in
a 10,000-block join, groups of 230 blocks in place of 75 wrote a third fewer bytes and
took a tenth less of the chain worker's CPU per block."""


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class TxResult:
    txid: str
    status: str
    """accepted, duplicate or rejected."""
    error: RejectError | MempoolFull | None = None


BlockListener = Callable[[Reorg], Awaitable[None]]
"""Told once per submission that moved the active chain."""
TxListener = Callable[[list[Transaction], str | None], Awaitable[None]]


class Node:
    def __init__(self, settings: Settings, *, clock: Callable[[], int] = wall_ms) -> None:
        self.settings = settings
        self.params = settings.params
        self.clock = clock
        self.genesis_hash = genesis_header(self.params).hash
        self.metrics = Metrics()
        self.node_id = ""
        self.syncing = False
        self.network_active = True
        self.closing = False
        self.block_listeners: list[BlockListener] = []
        self.tx_listeners: list[TxListener] = []
        self.tip_listeners: list[Callable[[], Awaitable[None]]] = []
        self.sync_listeners: list[Callable[[], Awaitable[None]]] = []
        self.gauges: list[Callable[[], None]] = []
        self.services: list[Service] = []
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="chain")
        # Signatures are checked (and synced blocks parsed) in worker processes, on every
        # core, before the chain worker sees them (``node.checkpool`` says why).
        self.checks = CheckPool(CHECK_WORKERS, self.params)
        self._readers: SimpleQueue[StoreReader] = SimpleQueue()
        self._all_readers: list[StoreReader] = []
        self._tasks: list[asyncio.Task[None]] = []
        # Group commit: submissions that arrive while the chain worker is busy are
        # validated together and made durable by one commit, then answered each.
        self._tx_commits = GroupCommit(self._flush_txs, name="submit-flush", max_items=MAX_TX_GROUP)
        self._block_commits = GroupCommit(
            self._flush_blocks,
            name="block-flush",
            max_items=MAX_BLOCK_GROUP,
            linger_s=SYNC_LINGER_S,
        )
        self._held: dict[str, Block] = {}
        self.miner_key: Ed25519PrivateKey | None = None
        self.miner_pub = ZERO_HASH

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        if self.settings.miner_key is not None:
            self.miner_key = private_key_from_pem(self.settings.miner_key.read_bytes())
            self.miner_pub = public_key_hex(self.miner_key)
        await self.run(self._open)
        self.checks.start()
        for service in self.services:
            await service.start()
        self._tasks.append(asyncio.create_task(self._retry_held(), name="retry-held"))
        log.info(
            "node %s on %s: height %d, tip %s",
            self.node_id,
            self.params.network,
            self.chain.height,
            self.chain.tip.hash,
        )

    def _open(self) -> None:
        self.store = Store.open(self.settings.db_path, self.params)
        self.chain = ChainState(self.store, self.params, self.clock)
        self.mempool = Mempool(
            self.store,
            self.params,
            max_count=self.settings.mempool_max_count,
            max_bytes=self.settings.mempool_max_bytes,
        )
        stored = [tx for tx, _ in self.store.mempool_load()]
        kept = {tx.txid for tx in self.mempool.revalidate(stored).kept}
        stale = [tx.txid for tx in stored if tx.txid not in kept]
        if stale:  # confirmed meanwhile, or invalid against the chain we now have
            self.store.mempool_remove(stale)
        self._update_gauges()

    async def stop(self) -> None:
        self.closing = True
        for service in reversed(self.services):
            await service.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self.run(self._close)
        self._writer.shutdown(wait=True)
        await asyncio.get_running_loop().run_in_executor(None, self.checks.close)

    def _close(self) -> None:
        for reader in self._all_readers:
            reader.close()
        self._all_readers.clear()
        if hasattr(self, "store"):
            self.store.close()

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn`` on the chain worker thread, after everything submitted before it."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._writer, lambda: fn(*args, **kwargs))

    @contextlib.contextmanager
    def reader(self) -> Iterator[StoreReader]:
        """A read-only store connection for the duration (from a pool; any thread)."""
        if self.closing:
            raise ShuttingDown("the node is shutting down")
        try:
            reader = self._readers.get_nowait()
        except Empty:
            reader = StoreReader(self.settings.db_path)
            self._all_readers.append(reader)
        try:
            yield reader
        finally:
            self._readers.put(reader)

    async def set_syncing(self, syncing: bool) -> None:
        """While syncing the node does not mine: its tip is not the network's."""
        if syncing != self.syncing:
            self.syncing = syncing
            for listener in self.sync_listeners:
                await listener()

    def refresh_gauges(self) -> None:
        self._update_gauges()
        for gauge in self.gauges:
            gauge()

    def header_hexes(self, from_height: int, count: int) -> list[str]:
        """Raw headers of the active chain from ``from_height``, as hex (any thread)."""
        entries = self.chain.active.entries(from_height, from_height + count)
        with self.reader() as reader:
            raws = reader.header_raws([e.hash for e in entries])
        return [raw.hex() for raw in raws]

    # --- transactions --------------------------------------------------------------------

    async def submit_transactions(
        self, objs: Sequence[Any], *, source: str | None = None
    ) -> list[TxResult]:
        """Parse, validate and accept a batch; every accepted one is durable on return."""
        parsed: list[Transaction | TxResult] = []
        for obj in objs:
            try:
                parsed.append(Transaction.from_json(obj))
            except InvalidTx as exc:
                parsed.append(TxResult(exc.txid or "", "rejected", exc))
        checks = iter(await self._check_txs([i for i in parsed if isinstance(i, Transaction)]))
        for position, item in enumerate(parsed):
            if isinstance(item, Transaction) and (failure := next(checks)) is not None:
                parsed[position] = TxResult(item.txid, "rejected", failure)
        results = await self._tx_commits.submit(parsed)
        accepted = [
            tx
            for tx, r in zip(parsed, results, strict=True)
            if isinstance(tx, Transaction) and r.status == "accepted"
        ]
        for r in results:
            if r.error is not None:
                self.metrics.txs_rejected.labels(r.error.code).inc()
        if accepted:
            self.metrics.txs_accepted.inc(len(accepted))
            await self._notify_txs(accepted, source)
        return results

    async def _check_txs(self, txs: list[Transaction]) -> list[InvalidTx | None]:
        """``check_tx`` of each: network and size here, signatures in the workers."""
        failures = [_field_failure(tx, self.params) for tx in txs]
        pending = [i for i, failure in enumerate(failures) if failure is None]
        problems = await self.checks.signature_problems([signature_job(txs[i]) for i in pending])
        for i, problem in zip(pending, problems, strict=True):
            if problem is not None:
                failures[i] = bad_signature(txs[i], problem)
        return failures

    async def _flush_txs(self, parsed: list[Transaction | TxResult]) -> list[TxResult]:
        return await self.run(self._accept_txs, parsed)

    def _accept_txs(self, parsed: list[Transaction | TxResult]) -> list[TxResult]:
        results: list[TxResult] = []
        accepted: list[Transaction] = []
        for item in parsed:
            if isinstance(item, TxResult):
                results.append(item)
                continue
            try:
                self.mempool.check(item, verify=False)  # check_tx ran in _check_txs
            except InvalidTx as exc:
                status = "duplicate" if exc.code == "duplicate" else "rejected"
                results.append(TxResult(item.txid, status, exc))
                continue
            except MempoolFull as exc:
                results.append(TxResult(item.txid, "rejected", exc))
                continue
            self.mempool.add(item)
            accepted.append(item)
            results.append(TxResult(item.txid, "accepted"))
        try:
            self._persist_pending(accepted)
        except Exception:
            self.mempool.revalidate([], drop=[tx.txid for tx in accepted])
            raise
        self._update_gauges()
        return results

    def _persist_pending(self, txs: list[Transaction]) -> None:
        """Make pending transactions durable, in one storage transaction."""
        if not txs:
            return
        self.store.mempool_add_many(txs, self.clock())

    async def _notify_txs(self, txs: list[Transaction], source: str | None) -> None:
        for listener in self.tx_listeners:
            try:
                await listener(txs, source)
            except Exception:  # a listener's failure must not undo an accepted tx
                log.exception("transaction listener failed")

    # --- blocks --------------------------------------------------------------------------

    async def submit_block(
        self, block: Block, *, verified: frozenset[str] | None = None
    ) -> BlockResult:
        """The one path for every block: mined, pushed by a peer, or synced."""
        sets = None if verified is None else [verified]
        return (await self.submit_blocks([block], verified=sets))[0]

    async def submit_blocks(
        self,
        blocks: Sequence[Block],
        *,
        verified: Sequence[frozenset[str]] | None = None,
        synced: bool = False,
    ) -> list[BlockResult]:
        """``submit_block`` of a run (a synced batch); runs submitted while the chain worker
        is busy are stored and activated together, in one storage transaction.

        ``verified`` (one set per block) names transactions whose signatures were checked
        already, in these exact bytes; the others are checked here, in the worker processes.
        A ``synced`` run (downloaded while catching up) may wait up to ``SYNC_LINGER_S``
        for more runs to share its commit.
        """
        started = time.perf_counter()
        if verified is None:
            verified = await self._verified_signatures(blocks)
        results = await self._block_commits.submit(
            list(zip(blocks, verified, strict=True)), patient=synced
        )
        self.metrics.block_process_seconds.observe(time.perf_counter() - started)
        return results

    async def _flush_blocks(self, batch: list[tuple[Block, frozenset[str]]]) -> list[BlockResult]:
        results, reorg, readded = await self.run(self._process_blocks, batch)
        for (block, _), result in zip(batch, results, strict=True):
            if result.outcome is BlockOutcome.TOO_NEW and len(self._held) < MAX_HELD_BLOCKS:
                self._held[block.hash] = block
            if result.code and result.outcome is BlockOutcome.REJECTED:
                self.metrics.blocks_rejected.labels(result.code).inc()
        if reorg.connected:
            for tip_listener in self.tip_listeners:
                await tip_listener()
            for listener in self.block_listeners:
                try:
                    await listener(reorg)
                except Exception:
                    log.exception("block listener failed")
        if readded:
            await self._notify_txs(readded, None)
        return results

    async def _verified_signatures(self, blocks: Sequence[Block]) -> list[frozenset[str]]:
        """For each block, the txids of its transactions whose checks already passed:
        byte-identical copies of pool transactions (the txid does not cover the signature,
        so a forged signature keeps the same txid), and those that pass ``check_tx`` now,
        all of the run's in parallel. A failure is left for ``check_block`` to find and
        report. Nothing is verified for a block we hold already, or whose proof of work
        fails (cheap to check first)."""
        pooled: list[list[str]] = []
        fresh: list[list[Transaction]] = []
        for block in blocks:
            pooled.append([])
            fresh.append([])
            known_block = self.chain.tree.get(block.hash)
            if known_block is not None and known_block.status is not Status.HEADER:
                continue
            if not signatures_worth_checking(block, self.params):
                continue
            for tx in block.transactions:
                known = self.mempool.get(tx.txid)
                if known is not None and known.leaf_bytes == tx.leaf_bytes:
                    pooled[-1].append(tx.txid)
                else:
                    fresh[-1].append(tx)
        failures = iter(await self._check_txs([tx for txs in fresh for tx in txs]))
        return [
            frozenset(ok + [tx.txid for tx in txs if next(failures) is None])
            for ok, txs in zip(pooled, fresh, strict=True)
        ]

    def _process_blocks(
        self, batch: list[tuple[Block, frozenset[str]]]
    ) -> tuple[list[BlockResult], Reorg, list[Transaction]]:
        results = self.chain.process_blocks(batch)
        reorg = results[0].reorg if results else Reorg()
        readded: list[Transaction] = []
        if reorg.disconnected:
            self.metrics.reorgs.inc()
            first = [tx for b in reversed(reorg.disconnected) for tx in b.transactions]
            confirmed = [tx.txid for b in reorg.connected for tx in b.transactions]
            rv = self.mempool.revalidate(first, drop=confirmed)
            readded = rv.added
            self._persist_pending(rv.added)
            self.store.mempool_remove([tx.txid for tx in rv.evicted])
        elif reorg.connected:
            rv2 = self.mempool.remove_confirmed(
                tx for b in reorg.connected for tx in b.transactions
            )
            if rv2 is not None and rv2.evicted:
                self.store.mempool_remove([tx.txid for tx in rv2.evicted])
        self.metrics.blocks_connected.inc(len(reorg.connected))
        self._update_gauges()
        return results, reorg, readded

    def _update_gauges(self) -> None:
        self.metrics.height.set(self.chain.height)
        self.metrics.mempool_txs.set(len(self.mempool))
        self.metrics.mempool_bytes.set(self.mempool.bytes)

    async def _retry_held(self) -> None:
        """Blocks that were too new are tried again once the clock has caught up."""
        while True:
            await asyncio.sleep(HELD_RETRY_S)
            for block_hash, block in list(self._held.items()):
                if block.header.timestamp <= self.clock() + self.params.max_future_ms:
                    del self._held[block_hash]
                    await self.submit_block(block)


def _field_failure(tx: Transaction, params: ConsensusParams) -> InvalidTx | None:
    try:
        check_tx_fields(tx, params)
    except InvalidTx as exc:
        return exc
    return None
