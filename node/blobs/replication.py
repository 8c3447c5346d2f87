"""Replication: keep a copy of every blob the chain references, fetched from peers.

A node that keeps blobs wants each digest named by a confirmed record's
``metadata.storage`` and not held yet. It asks its connected peers for it
(``GET /p2p/blobs/sha256:HEX``), one after the other, streaming the answer into the blob
store, which checks the digest while it writes; a peer whose bytes hash to something else
served a wrong blob and is discouraged. A digest no peer has is tried again later, with a
growing pause, and at once when a peer announces that it holds it (``announced``). A node
that stores a blob announces it to its peers (``announce``).

The peer network is reached through ``PeerLink`` only (four operations), so that the
replication logic does not depend on how the p2p layer authenticates or tracks peers: a
peer is an opaque string (the p2p layer's ``BlobPeers`` names peers by node_id and makes
every call within the session it holds there).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from node.blobs.errors import BlobError, BlobMismatch, BlobQuotaExceeded, BlobTooLarge
from node.blobs.store import BlobStore

__all__ = ["FETCH_TIMEOUT", "NO_PEERS", "PeerLink", "Replicator", "Want", "blob_path"]

log = logging.getLogger(__name__)

FETCH_TIMEOUT = httpx.Timeout(30.0, connect=3.0)
"""Per read of a blob from a peer: a peer that stops sending for this long is left."""
RETRY_FIRST_MS = 2_000
RETRY_MAX_MS = 600_000
MAX_WANTED = 100_000
ANNOUNCE_BATCH = 1000


def blob_path(digest: str) -> str:
    return f"/p2p/blobs/{digest}"


class PeerLink(Protocol):
    """What replication needs from the p2p layer."""

    def peer_urls(self) -> list[str]:
        """The peers connected now (whatever names ``get``/``post`` take)."""
        ...

    def get(self, peer_url: str, path: str) -> AbstractAsyncContextManager[httpx.Response]:
        """A streamed ``GET`` of a /p2p path from a peer (the body not read yet)."""
        ...

    async def post(self, peer_url: str, path: str, body: Any) -> None:
        """``POST`` a JSON body to a /p2p path of a peer; failures are the caller's to
        ignore (``httpx.HTTPError``)."""
        ...

    def discourage(self, peer_url: str, reason: str) -> None:
        """The peer misbehaved: disconnect it and refuse it for a while."""
        ...


class _NoPeers:
    """A ``PeerLink`` with nobody behind it: a node run without its p2p layer."""

    def peer_urls(self) -> list[str]:
        return []

    def get(self, peer_url: str, path: str) -> AbstractAsyncContextManager[httpx.Response]:
        raise httpx.TransportError(f"no peer {peer_url}")

    async def post(self, peer_url: str, path: str, body: Any) -> None:
        raise httpx.TransportError(f"no peer {peer_url}")

    def discourage(self, peer_url: str, reason: str) -> None:
        pass


NO_PEERS: PeerLink = _NoPeers()


@dataclass
class Want:
    """A referenced blob not held yet."""

    size: int
    next_try: int = 0
    pause: int = RETRY_FIRST_MS
    hints: list[str] = field(default_factory=list)
    """Peers that announced they hold it: asked first."""


class Replicator:
    """Fetches wanted blobs from peers into ``store``; ``run`` is its task."""

    def __init__(self, store: BlobStore, link: PeerLink, *, clock: Callable[[], int]) -> None:
        self.store = store
        self.link = link
        self.clock = clock
        self.wanted: dict[str, Want] = {}
        self._wake = asyncio.Event()

    def want(self, digest: str, size: int) -> None:
        if digest in self.store or digest in self.wanted or len(self.wanted) >= MAX_WANTED:
            return
        self.wanted[digest] = Want(size)
        self._wake.set()

    def drop(self, digests: Iterable[str]) -> None:
        for digest in digests:
            self.wanted.pop(digest, None)

    def announced(self, peer_url: str, digests: Iterable[str]) -> int:
        """A peer holds ``digests``: those wanted are asked of it first, now; how many."""
        count = 0
        for digest in digests:
            want = self.wanted.get(digest)
            if want is not None:
                if peer_url not in want.hints:
                    want.hints.insert(0, peer_url)
                want.next_try = 0
                count += 1
        if count:
            self._wake.set()
        return count

    async def announce(self, digests: list[str]) -> None:
        """Tell every connected peer that we hold ``digests`` (best effort)."""
        body = {"digests": digests[:ANNOUNCE_BATCH]}
        for url in self.link.peer_urls():
            with contextlib.suppress(httpx.HTTPError):
                await self.link.post(url, "/p2p/blobs", body)

    async def run(self, tick_s: float = 1.0) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), tick_s)
            self._wake.clear()
            await self.round()

    async def round(self) -> list[str]:
        """Try each wanted blob that is due once; those now held."""
        got = []
        now = self.clock()
        for digest, want in list(self.wanted.items()):
            if digest in self.store:
                self.wanted.pop(digest, None)
            elif want.next_try <= now:
                if await self.fetch(digest, want):
                    self.wanted.pop(digest, None)
                    got.append(digest)
                else:
                    want.next_try = self.clock() + want.pause
                    want.pause = min(want.pause * 2, RETRY_MAX_MS)
        if got:
            await self.announce(got)
        return got

    async def fetch(self, digest: str, want: Want) -> bool:
        """Ask peers for ``digest`` (announcers first) until one serves it whole."""
        peers = list(dict.fromkeys([*want.hints, *self.link.peer_urls()]))
        want.hints.clear()
        for url in peers:
            try:
                if await self._fetch_from(url, digest):
                    log.info("blobs: replicated %s from %s", digest, url)
                    return True
            except (BlobQuotaExceeded, BlobTooLarge) as exc:
                log.warning("blobs: cannot keep %s: %s", digest, exc.message)
                return False
        return False

    async def _fetch_from(self, url: str, digest: str) -> bool:
        try:
            async with self.link.get(url, blob_path(digest)) as response:
                if response.status_code != 200:
                    return False
                length = _content_length(response)
                await self.store.put(digest, response.aiter_bytes(), length=length)
                return True
        except BlobMismatch as exc:
            log.warning("blobs: %s served a wrong blob for %s", url, digest)
            self.link.discourage(url, f"served a wrong blob for {digest}: {exc.message}")
        except (BlobQuotaExceeded, BlobTooLarge):
            raise
        except BlobError as exc:
            log.info("blobs: fetching %s from %s failed: %s", digest, url, exc.message)
        except httpx.HTTPError as exc:
            log.info("blobs: fetching %s from %s failed: %s", digest, url, exc)
        return False


def _content_length(response: httpx.Response) -> int | None:
    value = response.headers.get("content-length", "")
    return int(value) if value.isdecimal() else None
