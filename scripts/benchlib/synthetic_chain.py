"""A synthetic regtest store of N valid, empty blocks, written row by row (no node, no API).

Each header is real: it extends the one before, carries the regtest bits, a timestamp
one millisecond after its parent's (above the median of the 11 before it) and a nonce
that meets the proof of work (about two hashes a block). The rows are what a node
would have written after connecting the chain: ``headers`` (status valid, sequence =
height), ``blocks`` (no transactions), ``active`` and the restart index. A node started
on the file loads it as it would its own.
"""

from __future__ import annotations

import hashlib
import sqlite3
import struct
from collections.abc import Iterator
from pathlib import Path

from consensus.genesis import genesis_header
from consensus.merkle import merkle_root
from consensus.params import REGTEST
from consensus.pow import bits_to_target, block_work
from node.store import Store

__all__ = ["build_store", "chain_rows"]

_PREFIX = struct.Struct(">IQ32s32sQI32s")
_ROWS_PER_COMMIT = 50_000


def chain_rows(blocks: int) -> Iterator[tuple[str, str, int, bytes, str]]:
    """(hash, prev_hash, height, raw header, chain work hex) of heights 1..blocks."""
    genesis = genesis_header(REGTEST)
    target = bits_to_target(REGTEST.pow_limit_bits)
    work = block_work(target)
    root = merkle_root([])
    miner = bytes(32)
    prev, chain_work, timestamp = bytes.fromhex(genesis.hash), work, genesis.timestamp
    for height in range(1, blocks + 1):
        timestamp += 1
        prefix = _PREFIX.pack(1, height, prev, root, timestamp, REGTEST.pow_limit_bits, miner)
        nonce = 0
        while True:
            raw = prefix + nonce.to_bytes(8, "big")
            digest = hashlib.sha256(raw).digest()
            if int.from_bytes(digest, "big") <= target:
                break
            nonce += 1
        chain_work += work
        yield digest.hex(), prev.hex(), height, raw, f"{chain_work:064x}"
        prev = digest


def build_store(data_dir: Path, blocks: int) -> Path:
    """Write a regtest store of ``blocks`` blocks after genesis into ``data_dir``; the
    path of its database file (where ``ailedger node --data-dir data_dir`` looks)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / f"{REGTEST.network}.sqlite3"
    Store.open(path, REGTEST, durable=False).close()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous = OFF")
        rows = chain_rows(blocks)
        while True:
            chunk = [row for _, row in zip(range(_ROWS_PER_COMMIT), rows, strict=False)]
            if not chunk:
                break
            conn.execute("BEGIN")
            conn.executemany(
                "INSERT INTO headers (hash, prev_hash, height, raw, chain_work, status,"
                " sequence) VALUES (?, ?, ?, ?, ?, 'valid', ?)",
                [(h, p, height, raw, work, height) for h, p, height, raw, work in chunk],
            )
            conn.executemany(
                "INSERT INTO blocks (hash, tx_count) VALUES (?, 0)", [(r[0],) for r in chunk]
            )
            conn.executemany(
                "INSERT INTO active (height, hash) VALUES (?, ?)", [(r[2], r[0]) for r in chunk]
            )
            conn.execute("COMMIT")
    finally:
        conn.close()
    with Store.open(path, REGTEST, durable=False) as store:
        store.catch_up_chain_index()  # what connecting the blocks would have written
    return path
