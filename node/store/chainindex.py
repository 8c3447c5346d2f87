"""The active chain's block index on disk, ready for a restart (schema version 3).

A restart needs every active header in the compact form of ``consensus.blockindex``.
Read row by row (a join of ``active`` and ``headers``, a hash lookup a block) that took
16 s at 1,000,000 blocks on a busy machine. So the store keeps the same columns as
blobs, ``CHUNK`` heights a row of ``chain_index``, and the sorted hash lookup of the
heights they cover in ``chain_lookup``: a restart reads a few hundred blobs.

The rows follow the active chain inside the same transactions: ``extend`` writes a chunk
once the tip is ``MARGIN`` blocks past its last height (so reorgs near the tip never
touch them), ``truncate`` drops the chunks of a height that leaves the active chain.
Arrays are stored little-endian.
"""

from __future__ import annotations

import sys
from array import array

from consensus.blockindex import lookup_value
from node.store.db import Database, StoreError

__all__ = [
    "CHUNK",
    "MARGIN",
    "Chunks",
    "extend",
    "pack",
    "truncate",
    "unpack",
]

CHUNK = 4096
MARGIN = 64
CHUNKS_A_COMMIT = 16
"""At most this many chunks written by one commit (a store from before version 3 catches
up over its next commits rather than in one long one)."""

Chunks = tuple[int, bytes, bytes, bytes, bytes, bytes]
"""A ``chain_index`` row: start, hashes, timestamps, bits, chain work, sequences."""

_ROWS = (
    "SELECT h.hash, h.raw, h.chain_work, coalesce(h.sequence, -1)"
    " FROM active a CROSS JOIN headers h ON h.hash = a.hash"
    " WHERE a.height >= ? AND a.height < ? ORDER BY a.height"
)


def pack(values: array[int]) -> bytes:
    if sys.byteorder == "big":
        values = array(values.typecode, values)
        values.byteswap()
    return values.tobytes()


def unpack(code: str, blob: bytes) -> array[int]:
    values = array(code, blob)
    if sys.byteorder == "big":
        values.byteswap()
    return values


def active_rows(db: Database, start: int, stop: int) -> list[tuple[bytes, int, int, bytes, int]]:
    """(raw hash, timestamp, bits, chain work bytes, sequence) of active heights
    ``start <= h < stop``, in order."""
    return [
        (bytes.fromhex(block_hash), _u(raw, 76, 84), _u(raw, 84, 88), bytes.fromhex(work), seq)
        for block_hash, raw, work, seq in db.all(_ROWS, (start, stop))
    ]


def _u(raw: bytes, start: int, stop: int) -> int:
    return int.from_bytes(raw[start:stop], "big")


def extend(db: Database, tip_height: int, limit: int | None = CHUNKS_A_COMMIT) -> int:
    """Write the chunks the active chain (tip at ``tip_height``) now covers, at most
    ``limit``; returns how many. Call it inside the transaction that moved the tip."""
    row = db.one("SELECT max(start) FROM chain_index")
    start = 0 if row is None or row[0] is None else row[0] + CHUNK
    written: list[int] = []
    while start + CHUNK - 1 + MARGIN <= tip_height and (limit is None or len(written) < limit):
        rows = active_rows(db, start, start + CHUNK)
        if len(rows) != CHUNK:
            raise StoreError(f"the active chain has a gap in heights {start}..{start + CHUNK}")
        db.execute(
            "INSERT INTO chain_index (start, hashes, timestamps, bits, chain_work, sequences)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                start,
                b"".join(r[0] for r in rows),
                pack(array("Q", (r[1] for r in rows))),
                pack(array("I", (r[2] for r in rows))),
                b"".join(r[3] for r in rows),
                pack(array("q", (r[4] for r in rows))),
            ),
        )
        written.append(start)
        start += CHUNK
    if written:
        _update_lookup(db, written)
    return len(written)


def _update_lookup(db: Database, starts: list[int]) -> None:
    """Merge the new chunks' hashes into the sorted lookup (or rebuild it from every
    chunk when it does not end where they begin)."""
    row = db.one("SELECT heights, sorted FROM chain_lookup")
    if row is not None and row[0] == starts[0]:
        values = unpack("Q", row[1]).tolist()
        todo = starts
    else:
        values = []
        todo = [start for (start,) in db.all("SELECT start FROM chain_index ORDER BY start")]
    for start in todo:
        (hashes,) = db.one("SELECT hashes FROM chain_index WHERE start = ?", (start,)) or (b"",)
        values.extend(
            lookup_value(hashes[32 * i : 32 * i + 32], start + i) for i in range(len(hashes) // 32)
        )
    values.sort()
    db.execute(
        "INSERT INTO chain_lookup (id, heights, sorted) VALUES (0, ?, ?)"
        " ON CONFLICT (id) DO UPDATE SET heights = excluded.heights, sorted = excluded.sorted",
        (todo[-1] + CHUNK, pack(array("Q", values))),
    )


def truncate(db: Database, height: int) -> None:
    """The block at ``height`` left the active chain: drop the chunks holding it or
    anything above, and the lookup if it covers them (``extend`` rebuilds it)."""
    first = height - height % CHUNK
    if db.execute("DELETE FROM chain_index WHERE start >= ?", (first,)):
        db.execute("DELETE FROM chain_lookup WHERE heights > ?", (first,))
