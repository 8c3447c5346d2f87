"""Which blobs the chain asks nodes to keep: ``metadata.storage`` of confirmed records.

A record that stores its artifact says so in its metadata (design §12)::

    "storage": {"scheme": "age-v1", "ciphertext_digest": "sha256:...",
                "ciphertext_size": 1234, "recipients": ["age1...", ...]}

The consensus rules do not look inside metadata, so a record may carry anything there:
``storage_ref`` reads it defensively and ignores what is not a well-formed reference.
``References`` tracks the referenced digests of the active chain as blocks connect and
disconnect (a digest stays referenced while any confirmed record names it).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from consensus.tx import Transaction, is_digest

__all__ = ["SCHEME", "STORAGE_MARK", "References", "StorageRef", "storage_ref"]

SCHEME = "age-v1"
STORAGE_MARK = '"ciphertext_digest"'
"""Text every storing record's JSON contains (to find them with one scan at start)."""
_STORING_KINDS = frozenset({"dataset", "model", "inference"})


@dataclass(frozen=True, slots=True)
class StorageRef:
    """A confirmed record's stored artifact: the ciphertext's digest and size."""

    txid: str
    digest: str
    size: int


def storage_ref(tx: Transaction) -> StorageRef | None:
    """The blob ``tx`` stores its artifact in, or ``None``."""
    if tx.kind not in _STORING_KINDS:
        return None
    metadata = tx.payload.get("metadata")
    storage: Any = metadata.get("storage") if isinstance(metadata, dict) else None
    if not isinstance(storage, dict) or storage.get("scheme") != SCHEME:
        return None
    digest, size = storage.get("ciphertext_digest"), storage.get("ciphertext_size")
    if not isinstance(digest, str) or not is_digest(digest):
        return None
    if type(size) is not int or size < 0:
        return None
    return StorageRef(tx.txid, digest, size)


class References:
    """Referenced blob digests: each with the records that name it, and its size."""

    def __init__(self) -> None:
        self._by_digest: dict[str, dict[str, int]] = {}

    def __contains__(self, digest: object) -> bool:
        return digest in self._by_digest

    def __len__(self) -> int:
        return len(self._by_digest)

    def add(self, txs: Iterable[Transaction]) -> list[StorageRef]:
        """Note the references of confirmed ``txs``; those found."""
        found = [ref for ref in map(storage_ref, txs) if ref is not None]
        for ref in found:
            self._by_digest.setdefault(ref.digest, {})[ref.txid] = ref.size
        return found

    def remove(self, txs: Iterable[Transaction]) -> None:
        """Forget the references of ``txs`` (their block left the active chain)."""
        for ref in map(storage_ref, txs):
            if ref is None:
                continue
            names = self._by_digest.get(ref.digest, {})
            names.pop(ref.txid, None)
            if not names:
                self._by_digest.pop(ref.digest, None)

    def size(self, digest: str) -> int | None:
        """The ciphertext size the records claim (the smallest, if they disagree)."""
        names = self._by_digest.get(digest)
        return min(names.values()) if names else None

    def digests(self) -> list[str]:
        return list(self._by_digest)
