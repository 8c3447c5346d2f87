"""A node's blob service: the store, what the chain references, replication, clean-up.

Off unless the node has a blob quota (``--blob-quota``). When on:

- uploads (``PUT /v1/blobs/...``) go to the store, within per-client limits (uploads a
  minute, uploads at once) and the node's largest blob size; a new blob is announced;
- the digests named by confirmed records (``node.blobs.refs``) are tracked as blocks
  connect and disconnect, and those not held are fetched from peers (``Replicator``);
- a blob that no confirmed record references is deleted once it is older than the grace
  period (default 24 h), so nobody can fill a node's disk with data the chain does not
  ask it to keep. The clock is injected (``clock``, ms), so tests can move time.

The service hears about the chain and the peers through narrow seams only: ``start``
takes a ``scan`` of the records storing artifacts (once, at start), ``link`` is a
``PeerLink`` (the p2p layer's ``node.p2p.blobpeers.BlobPeers``), and ``chain_moved`` is
told which blocks connected and disconnected.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from consensus.block import Block
from consensus.tx import Transaction
from node.blobs.errors import BlobsDisabled, UploadsThrottled
from node.blobs.refs import References, storage_ref
from node.blobs.replication import NO_PEERS, PeerLink, Replicator
from node.blobs.store import BlobStore
from node.config import Settings

__all__ = ["BlobLimits", "Blobs"]

log = logging.getLogger(__name__)

GC_EVERY_S = 300.0


@dataclass(frozen=True, slots=True)
class BlobLimits:
    quota: int | None
    """Bytes of blobs the node may hold; ``None``: the node keeps no blobs."""
    max_size: int | None = None
    """The largest blob accepted (default: the quota)."""
    grace_ms: int = 24 * 3600 * 1000
    uploads_per_minute: float = 60.0
    uploads_at_once: int = 4
    """Per client address."""

    @classmethod
    def from_settings(cls, settings: Settings) -> BlobLimits:
        return cls(
            quota=settings.blob_quota,
            max_size=settings.blob_max_size,
            grace_ms=int(settings.blob_grace_s * 1000),
            uploads_per_minute=settings.blob_uploads_per_minute,
            uploads_at_once=settings.blob_uploads_at_once,
        )


class Blobs:
    def __init__(self, root: Path, limits: BlobLimits, *, clock: Callable[[], int]) -> None:
        self.root = root
        self.limits = limits
        self.clock = clock
        self.refs = References()
        self.store: BlobStore | None = None
        self.replicator: Replicator | None = None
        self.link: PeerLink | None = None
        """How replication reaches peers; set by whoever runs the p2p layer (without
        one, this node keeps what is uploaded to it and fetches nothing)."""
        self._uploads: dict[str, int] = {}
        self._buckets: dict[str, tuple[float, int]] = {}
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def enabled(self) -> bool:
        return self.limits.quota is not None

    async def start(self, scan: Callable[[], Awaitable[Sequence[Transaction]]]) -> None:
        """Open the store, learn the references of the active chain, start replicating."""
        if self.limits.quota is None:
            return
        link = self.link if self.link is not None else NO_PEERS
        quota = self.limits.quota
        max_size = min(self.limits.max_size or quota, quota)
        self.store = await asyncio.to_thread(
            BlobStore.open, self.root, quota=quota, max_size=max_size, clock=self.clock
        )
        self.replicator = Replicator(self.store, link, clock=self.clock)
        for ref in self.refs.add(await scan()):
            self.replicator.want(ref.digest, ref.size)
        self._tasks.append(asyncio.create_task(self.replicator.run(), name="blob-replication"))
        self._tasks.append(asyncio.create_task(self._collect_loop(), name="blob-gc"))
        log.info(
            "blobs: %d held (%d bytes of %d), %d referenced, %d to fetch",
            len(self.store),
            self.store.used,
            quota,
            len(self.refs),
            len(self.replicator.wanted),
        )

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    def held(self) -> BlobStore:
        """The store; ``BlobsDisabled`` when this node keeps no blobs."""
        if self.store is None:
            raise BlobsDisabled("this node keeps no blobs (start it with --blob-quota SIZE)")
        return self.store

    # --- the chain -----------------------------------------------------------------------

    async def chain_moved(self, connected: Sequence[Block], disconnected: Sequence[Block]) -> None:
        """Blocks left and joined the active chain: update references and wants."""
        if self.replicator is None:
            return
        gone = [tx for block in disconnected for tx in block.transactions]
        self.refs.remove(gone)
        for ref in self.refs.add(tx for block in connected for tx in block.transactions):
            self.replicator.want(ref.digest, ref.size)
        dropped = (ref.digest for ref in map(storage_ref, gone) if ref is not None)
        self.replicator.drop(digest for digest in dropped if digest not in self.refs)

    def announced(self, peer_url: str | None, digests: Sequence[str]) -> int:
        """A connected peer says it holds ``digests``; how many of them we want."""
        if self.replicator is None or peer_url is None:
            return 0
        if peer_url.rstrip("/") not in self.replicator.link.peer_urls():
            return 0  # only a connected peer is asked: an announcement names no new hosts
        return self.replicator.announced(peer_url.rstrip("/"), digests)

    # --- uploads -------------------------------------------------------------------------

    async def upload(
        self, digest: str, chunks: AsyncIterator[bytes], *, length: int | None, client: str
    ) -> bool:
        """Store an upload from ``client``; True if the blob is new (then announced)."""
        store = self.held()
        if digest in store:
            return False
        self._admit(client)
        self._uploads[client] = self._uploads.get(client, 0) + 1
        try:
            created = await store.put(digest, chunks, length=length)
        finally:
            self._uploads[client] -= 1
            if not self._uploads[client]:
                del self._uploads[client]
        if created and self.replicator is not None:
            self.replicator.drop([digest])
            task = asyncio.create_task(self.replicator.announce([digest]), name="blob-announce")
            self._tasks.append(task)
            task.add_done_callback(self._forget_task)
        return created

    def _forget_task(self, task: asyncio.Task[None]) -> None:
        with contextlib.suppress(ValueError):
            self._tasks.remove(task)

    def _admit(self, client: str) -> None:
        """Per-client limits: uploads at once, and uploads a minute (a token bucket)."""
        if self._uploads.get(client, 0) >= self.limits.uploads_at_once:
            raise UploadsThrottled(
                f"at most {self.limits.uploads_at_once} uploads at once from one client",
                code="too-many-uploads",
                retry_after=5,
            )
        rate = self.limits.uploads_per_minute / 60_000  # tokens a ms
        burst = max(1.0, self.limits.uploads_per_minute)
        now = self.clock()
        tokens, stamp = self._buckets.get(client, (burst, now))
        tokens = min(burst, tokens + (now - stamp) * rate)
        if tokens < 1:
            wait_s = max(1, int((1 - tokens) / rate / 1000) + 1)
            raise UploadsThrottled(f"too many uploads; retry in {wait_s} s", retry_after=wait_s)
        if len(self._buckets) >= 10_000:
            self._buckets.clear()
        self._buckets[client] = (tokens - 1, now)

    # --- clean-up ------------------------------------------------------------------------

    def collect_garbage(self) -> list[str]:
        """Delete every blob no confirmed record references and older than the grace
        period; the digests deleted."""
        if self.store is None:
            return []
        now = self.clock()
        doomed = []
        for digest in self.store.digests():
            if digest in self.refs:
                continue
            try:
                age = now - self.store.stored_at(digest)
            except FileNotFoundError:
                age = self.limits.grace_ms + 1
            if age > self.limits.grace_ms:
                doomed.append(digest)
        for digest in doomed:
            self.store.delete(digest)
            log.info("blobs: deleted %s: referenced by no record after the grace period", digest)
        return doomed

    async def _collect_loop(self) -> None:
        while True:
            await asyncio.sleep(GC_EVERY_S)
            try:
                self.collect_garbage()
            except OSError:
                log.exception("blobs: clean-up failed")
