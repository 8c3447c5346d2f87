"""The SQLite schema as an ordered list of migrations, and the connection settings.

Version ``n`` of the schema is what you get after applying ``MIGRATIONS[:n]`` to an empty
database; the version in use is kept in ``meta.schema_version``. A migration is only ever
appended, never edited: a database written by version ``n`` of this module is upgraded by
running ``MIGRATIONS[n:]``. A database newer than this code is refused rather than guessed.

Connection settings (applied to every connection, writer and readers):

- WAL journal: readers never block the writer and the writer never blocks readers.
- ``synchronous=FULL`` (``durable=True``, the default): in WAL mode every COMMIT fsyncs
  the log, so a transaction the node acknowledged (a 202 for a submitted tx) survives
  ``kill -9`` and power loss; the fsync per commit is cheap next to signature checks.
  ``durable=False`` picks NORMAL, for tests and benchmarks: a commit is written to the
  log but not fsynced, so it still survives ``kill -9`` (the OS holds the write) and the
  database is never corrupted, but a power loss may forget the last commits.
- Checkpoints (copying the log back into the database) run on a thread of their own
  (``node.store.checkpoint``); the writer's own automatic checkpoint is only a fallback,
  at ``WAL_FALLBACK_PAGES``. The log is truncated whenever it starts over, so its size
  tells how much there is to copy.
- The writer keeps its temporary files in memory (``temp_store=MEMORY``): a statement
  that writes many rows (``Database.execute_rows``) keeps a statement journal (the
  pages it changed, as they were, to undo it alone), and on disk those journals were
  about 40% of all the bytes a node wrote while it synced a chain.
- ``foreign_keys=ON``: edges and revocations hang off ``confirmed`` with ``ON DELETE
  CASCADE``, so disconnecting a block removes exactly what connecting it added (digests,
  since version 2, are deleted by key: see ``_V2``).
"""

from __future__ import annotations

import sqlite3

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "STATUSES", "WAL_FALLBACK_PAGES", "configure"]

WAL_FALLBACK_PAGES = 32768
"""128 MiB of 4 KiB pages: where the writer checkpoints itself if the thread falls behind."""

STATUSES = ("header", "data", "valid", "invalid")
"""The header statuses of ``consensus.chain.Status``, as stored."""

_V1 = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    # The header tree. chain_work is 64 lowercase hex chars so it sorts as text.
    f"""CREATE TABLE headers (
        hash TEXT PRIMARY KEY,
        prev_hash TEXT NOT NULL,
        height INTEGER NOT NULL,
        raw BLOB NOT NULL CHECK (length(raw) = 128),
        chain_work TEXT NOT NULL CHECK (length(chain_work) = 64),
        status TEXT NOT NULL CHECK (status IN {STATUSES!r}),
        sequence INTEGER
    )""",
    "CREATE INDEX headers_by_height ON headers (height)",
    # Bodies of every block we hold, active or not. A tx's canonical JSON is kept once.
    "CREATE TABLE txs (txid TEXT PRIMARY KEY, json TEXT NOT NULL)",
    """CREATE TABLE blocks (
        hash TEXT PRIMARY KEY REFERENCES headers (hash),
        tx_count INTEGER NOT NULL
    )""",
    """CREATE TABLE block_txs (
        block_hash TEXT NOT NULL REFERENCES blocks (hash) ON DELETE CASCADE,
        idx INTEGER NOT NULL,
        txid TEXT NOT NULL REFERENCES txs (txid),
        PRIMARY KEY (block_hash, idx)
    ) WITHOUT ROWID""",
    # The active chain, genesis at height 0.
    """CREATE TABLE active (
        height INTEGER PRIMARY KEY,
        hash TEXT NOT NULL UNIQUE REFERENCES blocks (hash)
    )""",
    # Confirmed records on the active chain. pos orders them: (height, index) packed.
    """CREATE TABLE confirmed (
        txid TEXT PRIMARY KEY REFERENCES txs (txid),
        block_hash TEXT NOT NULL REFERENCES active (hash),
        height INTEGER NOT NULL,
        idx INTEGER NOT NULL,
        pos INTEGER NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        signer TEXT NOT NULL,
        nonce INTEGER NOT NULL,
        UNIQUE (signer, nonce)
    )""",
    "CREATE INDEX confirmed_by_block ON confirmed (block_hash)",
    "CREATE INDEX confirmed_by_kind ON confirmed (kind, pos)",
    "CREATE INDEX confirmed_by_signer ON confirmed (signer, pos)",
    """CREATE TABLE digests (
        digest TEXT NOT NULL,
        field TEXT NOT NULL,
        txid TEXT NOT NULL REFERENCES confirmed (txid) ON DELETE CASCADE,
        PRIMARY KEY (digest, txid, field)
    ) WITHOUT ROWID""",
    "CREATE INDEX digests_by_txid ON digests (txid)",
    # Lineage, child -> parent. Parents are not foreign keys: the store indexes what the
    # consensus rules accepted and does not re-check references.
    """CREATE TABLE edges (
        child TEXT NOT NULL REFERENCES confirmed (txid) ON DELETE CASCADE,
        parent TEXT NOT NULL,
        role TEXT NOT NULL,
        PRIMARY KEY (child, parent, role)
    ) WITHOUT ROWID""",
    "CREATE INDEX edges_by_parent ON edges (parent, child, role)",
    """CREATE TABLE revocations (
        subject TEXT PRIMARY KEY,
        revoker TEXT NOT NULL UNIQUE REFERENCES confirmed (txid) ON DELETE CASCADE
    )""",
    """CREATE TABLE mempool (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        txid TEXT NOT NULL UNIQUE,
        json TEXT NOT NULL,
        received_ms INTEGER NOT NULL
    )""",
    """CREATE TABLE peers (
        url TEXT PRIMARY KEY,
        node_id TEXT,
        last_seen INTEGER,
        failures INTEGER NOT NULL DEFAULT 0,
        discouraged_until INTEGER,
        reason TEXT,
        source TEXT
    )""",
)

# Version 2: digests lose their foreign key and their index by txid. Every commit of a
# synced run rewrote most leaves of both (a txid or a digest is random), and the index
# served only the cascade; disconnecting a block now deletes its digest rows by key.
_V2 = (
    """CREATE TABLE digests_v2 (
        digest TEXT NOT NULL,
        field TEXT NOT NULL,
        txid TEXT NOT NULL,
        PRIMARY KEY (digest, txid, field)
    ) WITHOUT ROWID""",
    "INSERT INTO digests_v2 (digest, field, txid) SELECT digest, field, txid FROM digests",
    "DROP TABLE digests",
    "ALTER TABLE digests_v2 RENAME TO digests",
)

# Version 3: the active chain's block index, ready for a restart (``node.store.chainindex``):
# columns of 4,096 heights a row, and the sorted hash lookup of the heights they cover.
_V3 = (
    """CREATE TABLE chain_index (
        start INTEGER PRIMARY KEY,
        hashes BLOB NOT NULL,
        timestamps BLOB NOT NULL,
        bits BLOB NOT NULL,
        chain_work BLOB NOT NULL,
        sequences BLOB NOT NULL
    )""",
    """CREATE TABLE chain_lookup (
        id INTEGER PRIMARY KEY CHECK (id = 0),
        heights INTEGER NOT NULL,
        sorted BLOB NOT NULL
    )""",
)

MIGRATIONS: tuple[tuple[str, ...], ...] = (_V1, _V2, _V3)
SCHEMA_VERSION = len(MIGRATIONS)


def configure(conn: sqlite3.Connection, *, writer: bool, durable: bool = True) -> None:
    """Apply the per-connection settings described in the module docstring."""
    conn.execute("PRAGMA busy_timeout = 10000")
    conn.execute("PRAGMA foreign_keys = ON")
    # Index lookups by txid are random: keep the hot part of the file in memory
    # (SQLite's default cache is 2 MB; the writer checks every transaction against it).
    conn.execute(f"PRAGMA cache_size = -{64 * 1024 if writer else 16 * 1024}")
    conn.execute(f"PRAGMA mmap_size = {256 << 20}")
    conn.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
    if writer:
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise sqlite3.OperationalError(f"could not enable WAL mode (got {mode!r})")
        conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_FALLBACK_PAGES}")
        conn.execute("PRAGMA temp_store = MEMORY")
        conn.execute("PRAGMA journal_size_limit = 0")
    else:
        conn.execute("PRAGMA query_only = ON")
