"""Content-addressed blobs on disk, never partially visible, within a quota.

A blob is named by the SHA-256 of its bytes and lives at ``<root>/sha256/<2 hex>/<hex>``.
An upload streams into a temporary file under ``<root>/tmp`` while it is hashed; only
when every byte has arrived, the digest matches the name, and the file is fsynced is it
renamed into place (and the directory fsynced), so a reader sees a whole blob or none.
A node killed mid-upload leaves only a temporary file, removed when the store opens.

The quota bounds the bytes of blobs held plus those being uploaded: an upload reserves
its Content-Length before the first byte (or grows its reservation as bytes arrive) and
is refused the moment it would pass the quota. A blob's modification time is the time
it was stored (by the store's clock, so tests can move it): the grace period of an
unreferenced blob runs from there (``node.blobs.service``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import IO, BinaryIO

from consensus.tx import is_digest
from node.blobs.errors import BlobIncomplete, BlobMismatch, BlobQuotaExceeded, BlobTooLarge

__all__ = ["WRITE_CHUNK", "BlobStore"]

WRITE_CHUNK = 1 << 20
"""Bytes gathered before they are hashed and written (on a worker thread)."""
_RESERVE_STEP = 4 << 20


class BlobStore:
    """The blobs of one node. Use it from one event loop; file work runs on threads."""

    def __init__(self, root: Path, *, quota: int, max_size: int, clock: Callable[[], int]) -> None:
        self.root = root
        self.quota = quota
        self.max_size = max_size
        self.clock = clock
        self._objects = root / "sha256"
        self._tmp = root / "tmp"
        self._sizes: dict[str, int] = {}
        self._used = 0
        self._reserved = 0

    @classmethod
    def open(cls, root: Path, *, quota: int, max_size: int, clock: Callable[[], int]) -> BlobStore:
        """Open (or make) the store at ``root``: drop leftovers of interrupted uploads and
        count what is held."""
        store = cls(root, quota=quota, max_size=max_size, clock=clock)
        store._objects.mkdir(parents=True, exist_ok=True)
        store._tmp.mkdir(parents=True, exist_ok=True)
        for leftover in store._tmp.iterdir():
            leftover.unlink(missing_ok=True)
        for shard in store._objects.iterdir():
            for path in shard.iterdir() if shard.is_dir() else ():
                digest = "sha256:" + path.name
                if is_digest(digest) and shard.name == path.name[:2]:
                    store._sizes[digest] = path.stat().st_size
        store._used = sum(store._sizes.values())
        return store

    # --- reads ---------------------------------------------------------------------------

    @property
    def used(self) -> int:
        return self._used

    @property
    def free(self) -> int:
        return max(0, self.quota - self._used - self._reserved)

    def __contains__(self, digest: object) -> bool:
        return digest in self._sizes

    def __len__(self) -> int:
        return len(self._sizes)

    def digests(self) -> list[str]:
        return list(self._sizes)

    def size(self, digest: str) -> int | None:
        return self._sizes.get(digest)

    def path(self, digest: str) -> Path:
        hex_ = digest.removeprefix("sha256:")
        return self._objects / hex_[:2] / hex_

    def stored_at(self, digest: str) -> int:
        """When the blob was stored, in ms (its file's modification time)."""
        return self.path(digest).stat().st_mtime_ns // 1_000_000

    def open_blob(self, digest: str) -> tuple[BinaryIO, int] | None:
        """The blob opened for reading, and its size; ``None`` if not held. The open file
        stays readable even if the blob is deleted meanwhile."""
        if digest not in self._sizes:
            return None
        try:
            handle = self.path(digest).open("rb")
        except FileNotFoundError:
            return None
        return handle, os.fstat(handle.fileno()).st_size

    # --- writes --------------------------------------------------------------------------

    async def put(
        self, digest: str, chunks: AsyncIterator[bytes], *, length: int | None = None
    ) -> bool:
        """Store the bytes of ``chunks`` as ``digest``: True if new, False if already held
        (then ``chunks`` is not read). Raises ``BlobError`` (nothing is kept) when the
        bytes are too many, past the quota, fewer than ``length`` or of another digest."""
        if digest in self._sizes:
            return False
        self._check_room(length or 0)
        reserved = length or 0
        self._reserved += reserved
        fd, name = tempfile.mkstemp(dir=self._tmp, prefix="upload-")
        sink = _Sink(os.fdopen(fd, "wb"))
        temporary = Path(name)
        try:
            received = 0
            async for chunk in chunks:
                received += len(chunk)
                if received > reserved:
                    grow = max(received - reserved, _RESERVE_STEP)
                    self._check_room(received, grow)
                    self._reserved += grow
                    reserved += grow
                await sink.add(chunk)
            found = await sink.finish()
            if length is not None and received != length:
                raise BlobIncomplete(f"the body ended after {received} of {length} bytes")
            if found != digest:
                raise BlobMismatch(f"the bytes sent hash to {found}, not {digest}")
            await asyncio.to_thread(self._commit, sink.handle, temporary, digest)
        except BaseException:
            await sink.abort()
            temporary.unlink(missing_ok=True)
            raise
        finally:
            self._reserved -= reserved
        if digest not in self._sizes:
            self._sizes[digest] = received
            self._used += received
        return True

    def _check_room(self, total: int, more: int | None = None) -> None:
        if total > self.max_size:
            raise BlobTooLarge(f"a blob may hold at most {self.max_size} bytes on this node")
        if (total if more is None else more) > self.free:
            raise BlobQuotaExceeded(
                f"the node's blob quota ({self.quota} bytes, {self._used} used) has no room "
                f"for {total} more bytes"
            )

    def _commit(self, handle: IO[bytes], temporary: Path, digest: str) -> None:
        """fsync, stamp the store time, rename into place, fsync the directory."""
        handle.flush()
        os.fsync(handle.fileno())
        handle.close()
        stamp = self.clock() * 1_000_000
        os.utime(temporary, ns=(stamp, stamp))
        target = self.path(digest)
        target.parent.mkdir(exist_ok=True)
        os.replace(temporary, target)
        _fsync_dir(target.parent)

    def delete(self, digest: str) -> None:
        size = self._sizes.pop(digest, None)
        if size is not None:
            self._used -= size
            self.path(digest).unlink(missing_ok=True)


class _Sink:
    """An upload's temporary file, hashed as written. A batch is hashed and written on
    worker threads while the next one arrives (at most two batches in memory)."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle = handle
        self.hasher = hashlib.sha256()
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._writing: asyncio.Future[tuple[None, int]] | None = None

    async def add(self, chunk: bytes) -> None:
        self._pending.append(chunk)
        self._pending_bytes += len(chunk)
        if self._pending_bytes >= WRITE_CHUNK:
            await self._flush()

    async def _flush(self) -> None:
        data = b"".join(self._pending)
        self._pending, self._pending_bytes = [], 0
        if self._writing is not None:
            await self._writing
        # Hashing and writing run on two threads at once (both let go of the GIL): on a
        # slow core each alone takes as long as receiving the bytes.
        self._writing = asyncio.gather(
            asyncio.to_thread(self.hasher.update, data), asyncio.to_thread(self.handle.write, data)
        )

    async def finish(self) -> str:
        """Write what is left; the digest of everything written."""
        await self._flush()
        assert self._writing is not None
        await self._writing
        return "sha256:" + self.hasher.hexdigest()

    async def abort(self) -> None:
        if self._writing is not None:
            with contextlib.suppress(Exception):
                await self._writing
        self.handle.close()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
