"""Reading the header tree back at a restart, in bulk and in a bounded memory.

The active chain (nearly every header of a long chain) comes back as columns
(``consensus.blockindex.ChainColumns``) from the blobs of ``node.store.chainindex``,
and only the heights those do not cover yet (the last few thousand) row by row. The
headers off the active chain (side branches, headers-only runs) are few; they come back
as rows, parents before children, for the tree to add one by one.

It reads on a connection of its own without memory-mapped I/O and with a small page
cache: memory-mapped reads of the whole index would stay in the node's resident memory
(file pages count there) long after the restart.
"""

from __future__ import annotations

import json
import sqlite3
from array import array
from pathlib import Path

from consensus.block import Header
from consensus.blockindex import ChainColumns
from node.store.chainindex import CHUNK, unpack
from node.store.db import StoreError

__all__ = ["load_chain_columns", "load_side_headers"]

_REST = (
    "SELECT h.hash, h.raw, h.chain_work, coalesce(h.sequence, -1)"
    " FROM active a CROSS JOIN headers h ON h.hash = a.hash"
    " WHERE a.height >= ? ORDER BY a.height"
)
_FORK_HEIGHTS = "SELECT height FROM headers GROUP BY height HAVING count(*) > 1"
_SIDE = """
    SELECT raw, chain_work, status, sequence, height, rowid FROM headers WHERE height > ?
    UNION ALL
    SELECT h.raw, h.chain_work, h.status, h.sequence, h.height, h.rowid FROM headers h
    WHERE h.height IN (SELECT value FROM json_each(?))
        AND h.hash != (SELECT a.hash FROM active a WHERE a.height = h.height)
    ORDER BY 5, 6
"""


def _connect(path: Path) -> sqlite3.Connection:
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
        conn.execute("PRAGMA mmap_size = 0")
        conn.execute("PRAGMA cache_size = -2048")
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read the header tree of {path}: {exc}") from exc
    return conn


def load_chain_columns(path: Path) -> ChainColumns:
    """The active chain of the store at ``path``, heights 0..tip, as columns."""
    conn = _connect(path)
    try:
        conn.execute("BEGIN")  # one snapshot for all the reads
        hashes, works = bytearray(), bytearray()
        times, bits, sequences = array("Q"), array("I"), array("q")
        rows = conn.execute(
            "SELECT start, hashes, timestamps, bits, chain_work, sequences"
            " FROM chain_index ORDER BY start"
        )
        for start, chunk_hashes, chunk_times, chunk_bits, chunk_works, chunk_seqs in rows:
            if start != len(times):
                raise StoreError(f"the chain index skips from height {len(times)} to {start}")
            hashes += chunk_hashes
            times += unpack("Q", chunk_times)
            bits += unpack("I", chunk_bits)
            works += chunk_works
            sequences += unpack("q", chunk_seqs)
        covered = len(times)
        if covered % CHUNK or len(hashes) != 32 * covered or len(works) != 32 * covered:
            raise StoreError("the chain index has a chunk of the wrong size")
        lookup = conn.execute("SELECT heights, sorted FROM chain_lookup").fetchone()
        for block_hash, raw, work, sequence in conn.execute(_REST, (covered,)):
            hashes += bytes.fromhex(block_hash)
            times.append(int.from_bytes(raw[76:84], "big"))
            bits.append(int.from_bytes(raw[84:88], "big"))
            works += bytes.fromhex(work)
            sequences.append(sequence)
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read the active chain of {path}: {exc}") from exc
    finally:
        conn.close()
    fresh = lookup is not None and lookup[0] == covered
    return ChainColumns(
        hashes=bytes(hashes),
        timestamps=times,
        bits=bits,
        chain_work=bytes(works),
        sequences=sequences,
        lookup=unpack("Q", lookup[1]) if fresh else array("Q"),
    )


def load_side_headers(path: Path, tip_height: int) -> list[tuple[Header, int, str, int | None]]:
    """Every header off the active chain with its chain work, status and sequence,
    parents before children (heights that hold two headers, and heights above the tip)."""
    conn = _connect(path)
    try:
        forks = [height for (height,) in conn.execute(_FORK_HEIGHTS)]
        rows = conn.execute(_SIDE, (tip_height, json.dumps(forks))).fetchall()
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read the side branches of {path}: {exc}") from exc
    finally:
        conn.close()
    return [(Header.decode(row[0]), int(row[1], 16), row[2], row[3]) for row in rows]
