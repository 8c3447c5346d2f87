"""Gossip: each new valid transaction and block, pushed to every peer not known to have it.

The node calls ``relay_block`` and ``relay_txs`` after validation only, so nothing invalid
is ever passed on. Per-peer seen sets (``Peer.known_blocks``, ``Peer.known_txs``: what the
peer sent us or we sent it) keep a message from going back where it came from. Each
connected peer has a queue and a sender task of its own that delivers in order, so a slow
peer delays only itself; consecutive transactions go as one batch of up to ``TX_BATCH``.
A node that is syncing relays no blocks: it has nothing new to tell.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from node.p2p.client import PeerRefused, PeerUnavailable

if TYPE_CHECKING:
    from consensus.tx import Transaction
    from node.chainstate import Reorg
    from node.p2p.peers import Peer
    from node.p2p.service import P2P

__all__ = ["QUEUE_SIZE", "TX_BATCH", "Gossip"]

log = logging.getLogger(__name__)

TX_BATCH = 500
QUEUE_SIZE = 10_000
"""Messages waiting for one peer; past this, new ones for it are dropped (it can sync)."""


class Gossip:
    """The senders of the p2p service's connected peers: ``open`` one when a peer
    connects, ``close`` it when the peer is gone."""

    def __init__(self, p2p: P2P) -> None:
        self.p2p = p2p
        self._queues: dict[str, asyncio.Queue[tuple[str, Any]]] = {}
        self._senders: dict[str, asyncio.Task[None]] = {}

    def open(self, peer: Peer) -> None:
        task = self._senders.get(peer.url)
        if task is None or task.done():
            queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue(maxsize=QUEUE_SIZE)
            self._queues[peer.url] = queue
            self._senders[peer.url] = asyncio.create_task(
                self._send_loop(peer, queue), name=f"send {peer.url}"
            )

    def close(self, url: str) -> None:
        self._queues.pop(url, None)
        task = self._senders.pop(url, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    def senders(self) -> list[asyncio.Task[None]]:
        return list(self._senders.values())

    async def relay_block(self, reorg: Reorg) -> None:
        """Push each block that joined the active chain to every peer not known to have it.
        Not while syncing: a node catching up has nothing new to tell."""
        if not self.p2p.active or self.p2p.node.syncing:
            return
        for connected in reorg.connected:
            for peer in self.p2p.table.connected():
                if connected.hash not in peer.known_blocks:
                    peer.known_blocks.add(connected.hash)
                    self._enqueue(peer, "block", connected)

    async def relay_txs(self, txs: list[Transaction], source: str | None) -> None:
        """Push new transactions to every peer not known to have them (``source`` sent them)."""
        if not self.p2p.active:
            return
        for peer in self.p2p.table.connected():
            if peer.url == source:
                for tx in txs:
                    peer.known_txs.add(tx.txid)
                continue
            fresh = [tx for tx in txs if tx.txid not in peer.known_txs]
            for tx in fresh:
                peer.known_txs.add(tx.txid)
                self._enqueue(peer, "tx", tx)

    def _enqueue(self, peer: Peer, kind: str, item: Any) -> None:
        queue = self._queues.get(peer.url)
        if queue is not None:
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait((kind, item))

    async def _send_loop(self, peer: Peer, queue: asyncio.Queue[tuple[str, Any]]) -> None:
        """Deliver this peer's messages in order; consecutive transactions go as one batch."""
        carry: tuple[str, Any] | None = None
        while True:
            kind, item = carry or await queue.get()
            carry = None
            if kind == "block":
                path, body = "/p2p/blocks", item.to_json()
            else:
                batch = [item]
                while len(batch) < TX_BATCH and not queue.empty():
                    nxt = queue.get_nowait()
                    if nxt[0] != "tx":
                        carry = nxt
                        break
                    batch.append(nxt[1])
                path, body = "/p2p/transactions", {"transactions": [t.to_json() for t in batch]}
            if not await self._deliver(peer, path, body):
                return

    async def _deliver(self, peer: Peer, path: str, body: Any) -> bool:
        """Send one message; False when the peer is gone (the sender then stops)."""
        client = self.p2p.client
        assert client is not None
        try:
            await client.call("POST", f"{peer.url}{path}", json=body)
        except PeerUnavailable as exc:
            self.p2p.failed(peer, str(exc))
            return False
        except PeerRefused as exc:
            log.info("p2p: %s refused %s: %s", peer.url, path, exc)
            if exc.code in ("peer-discouraged", "network-inactive"):
                self.p2p.failed(peer, str(exc))
                return False
        return True
