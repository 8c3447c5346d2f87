"""Mining on a node: block templates from the mempool and the active tip, the miner's
worker processes kept on the newest one, and each solved block submitted like any other.

A template is rebuilt when the tip moves, within ``TEMPLATE_REFRESH_S`` of a change to
the mempool, and every ten seconds besides (its timestamp stays fresh). While the node
syncs there is no template: its tip is not the network's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from consensus.block import Block
from consensus.merkle import merkle_root
from consensus.pow import bits_to_target
from consensus.tx import Transaction
from node.chainstate import BlockOutcome
from node.miner import Miner, Template, mine_once

if TYPE_CHECKING:
    from node.ports import ChainPort

__all__ = ["TEMPLATE_REFRESH_S", "Mining"]

log = logging.getLogger(__name__)

TEMPLATE_REFRESH_S = 1.0
"""How soon a changed mempool reaches the miner (a new tip reaches it at once)."""
TEMPLATE_MAX_AGE_S = 10.0
"""A template is rebuilt this often even if nothing changed: its timestamp stays fresh."""


class Mining:
    """A node's mining: off until ``set_active(True)`` (at start with ``--mine``);
    ``mine_blocks`` works either way. It subscribes to the chain's events: a new tip and a
    sync that starts or ends refresh the template, new transactions mark it stale."""

    def __init__(self, node: ChainPort) -> None:
        self.node = node
        self._miner: Miner | None = None
        self._task: asyncio.Task[None] | None = None
        self._dirty = asyncio.Event()
        self._job = 0
        node.services.append(self)
        node.tip_listeners.append(self.tip_changed)
        node.sync_listeners.append(self.refresh)
        node.tx_listeners.append(self._txs_added)
        node.gauges.append(self.report_hash_rate)

    async def start(self) -> None:
        if self.node.settings.mine:
            await self.set_active(True)

    async def stop(self) -> None:
        await self.set_active(False)

    async def _txs_added(self, txs: list[Transaction], source: str | None) -> None:
        self.mempool_changed()

    @property
    def active(self) -> bool:
        """Whether the miner's workers are running."""
        return self._miner is not None

    def template(self, job_id: int) -> Template:
        """A block on the active tip with the mempool's best transactions (chain worker)."""
        node = self.node
        txs = node.mempool.select(node.params.max_block_txs, node.params.max_block_bytes)
        root = merkle_root([tx.leaf_bytes for tx in txs]).hex()
        header = node.chain.template_header(root, node.miner_pub, node.clock())
        return Template(
            job_id=job_id, header=header, target=bits_to_target(header.bits), payload=tuple(txs)
        )

    async def mine_blocks(self, count: int) -> list[str]:
        """Mine ``count`` blocks now on the active tip (meant for regtest)."""
        hashes: list[str] = []
        loop = asyncio.get_running_loop()
        for _ in range(count):
            template = await self.node.run(self.template, 0)
            header = await loop.run_in_executor(None, mine_once, template.header, template.target)
            block = Block(header, _payload_txs(template))
            result = await self.node.submit_block(block, verified=_txids(template))
            if result.outcome is not BlockOutcome.ACCEPTED:
                raise RuntimeError(f"mined block {block.hash} was not accepted: {result.code}")
            hashes.append(block.hash)
        return hashes

    async def set_active(self, enabled: bool) -> None:
        """Start or stop the miner's workers (idempotent)."""
        if enabled and self._miner is None:
            self._miner = Miner(self.node.settings.miner_workers)
            # Spawning workers takes tens of ms each: not on the event loop.
            await asyncio.get_running_loop().run_in_executor(None, self._miner.start)
            self._task = asyncio.create_task(self._mine_loop(self._miner), name="miner")
            await self.refresh()
        elif not enabled and self._miner is not None:
            miner, self._miner = self._miner, None
            if self._task is not None:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            await asyncio.get_running_loop().run_in_executor(None, miner.stop)

    def mempool_changed(self) -> None:
        """New transactions: the template is rebuilt within ``TEMPLATE_REFRESH_S``."""
        self._dirty.set()

    async def tip_changed(self) -> None:
        """The active tip moved: mine on the new one at once."""
        self._dirty.set()
        if self._miner is not None:
            await self.refresh()

    def report_hash_rate(self) -> None:
        """Set the hash-rate gauge from the running miner (left as it is when it is off)."""
        if self._miner is not None:
            self.node.metrics.hash_rate.set(self._miner.hash_rate())

    async def refresh(self) -> None:
        """Give the miner a new template (none while the node syncs)."""
        miner = self._miner
        if miner is None:
            return
        self._dirty.clear()
        if self.node.syncing:
            miner.set_template(None)
            return
        self._job += 1
        miner.set_template(await self.node.run(self.template, self._job))

    async def _mine_loop(self, miner: Miner) -> None:
        refresher = asyncio.create_task(self._refresh_on_change(), name="template-refresh")
        try:
            while True:
                solution = await miner.next_solution()
                template = solution.template
                block = Block(template.header.with_nonce(solution.nonce), _payload_txs(template))
                self.report_hash_rate()
                result = await self.node.submit_block(block, verified=_txids(template))
                log.info("mined block %s at %d: %s", block.hash, block.height, result.outcome)
                await self.refresh()
        finally:
            refresher.cancel()

    async def _refresh_on_change(self) -> None:
        """A changed mempool reaches the miner within a second; the timestamp stays fresh."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._dirty.wait(), timeout=TEMPLATE_MAX_AGE_S)
            await asyncio.sleep(TEMPLATE_REFRESH_S)
            self.report_hash_rate()
            await self.refresh()


def _payload_txs(template: Template) -> tuple[Transaction, ...]:
    payload = template.payload
    assert isinstance(payload, tuple)
    return payload


def _txids(template: Template) -> frozenset[str]:
    return frozenset(tx.txid for tx in _payload_txs(template))
