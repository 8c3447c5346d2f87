"""Gossip: the per-peer senders that deliver what the protocol core relays.

The core (``protocol.PeerProtocol.block_connected``/``txs_accepted``, told after
validation only, so nothing invalid is ever passed on) decides who gets what from the
per-peer seen sets (``Peer.known_blocks``, ``Peer.known_txs``: what the peer sent us or
we sent it), so a message never goes back where it came from. Each connected peer has
a queue and a sender task of its own that delivers in order, so a slow peer delays only
itself; consecutive transactions go as one batch of up to ``TX_BATCH``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from node.p2p.client import PeerRefused, PeerUnavailable

if TYPE_CHECKING:
    from collections.abc import Callable

    from node.p2p.client import PeerClient
    from node.p2p.peers import Peer

__all__ = ["QUEUE_SIZE", "TX_BATCH", "Gossip"]

log = logging.getLogger(__name__)

TX_BATCH = 500
QUEUE_SIZE = 10_000
"""Messages waiting for one peer; past this, new ones for it are dropped (it can sync)."""


class Gossip:
    """The senders of the p2p service's connected peers: ``open`` one when a peer
    connects, ``close`` it when the peer is gone."""

    def __init__(self, failed: Callable[[Peer, str], None]) -> None:
        self.client: PeerClient | None = None
        """Set when the p2p service starts."""
        self._failed = failed
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

    def is_open(self, url: str) -> bool:
        task = self._senders.get(url)
        return task is not None and not task.done()

    def enqueue(self, url: str, kind: str, item: Any) -> None:
        """Queue ``item`` (a block or a transaction) for the peer at ``url``; dropped when
        its queue is full (it can sync) or it has no sender."""
        queue = self._queues.get(url)
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
        client = self.client
        assert client is not None
        try:
            await client.call("POST", f"{peer.url}{path}", json=body, session=peer.token)
        except PeerUnavailable as exc:
            self._failed(peer, str(exc))
            return False
        except PeerRefused as exc:
            log.info("p2p: %s refused %s: %s", peer.url, path, exc)
            if exc.code in ("peer-discouraged", "network-inactive", "no-session"):
                self._failed(peer, str(exc))
                return False
        return True
