"""The node's durable state in one SQLite file (design §7), written by one thread.

On disk: the header tree (with cumulative work and status), block bodies, the active
chain, the confirmed-record indexes (location, (signer, nonce), digests, lineage,
revocations), the mempool and known peers. Every change happens inside ``transaction()``
— one ``BEGIN IMMEDIATE ... COMMIT`` — and nested calls join the outer one through a
savepoint, so the node can wrap a whole reorg (several disconnects and connects) in a
single transaction and a crash leaves either the old chain or the new one.

The store does not validate anything: it indexes what the consensus rules accepted.
Its own checks (connect only on the tip, disconnect only the tip, a matching network)
guard against bugs in the caller, and fail with ``StoreError``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from consensus.block import Block, Header
from consensus.blockindex import ChainColumns
from consensus.genesis import genesis_block
from consensus.params import ConsensusParams
from consensus.pow import bits_to_target, block_work
from consensus.tx import Transaction
from node.store import chainindex, records
from node.store.chainload import load_chain_columns, load_side_headers
from node.store.checkpoint import Checkpointer
from node.store.db import Database, StoreError
from node.store.queries import Queries, StoreReader, parse_tx, position
from node.store.schema import MIGRATIONS, SCHEMA_VERSION, STATUSES

__all__ = ["PEER_FIELDS", "Store"]

PEER_FIELDS = frozenset(
    {"node_id", "last_seen", "failures", "discouraged_until", "reason", "source"}
)
"""The columns ``peer_upsert`` accepts besides ``url``."""

_MAX_WORK = 1 << 256


def _work_hex(chain_work: int) -> str:
    if not 0 < chain_work < _MAX_WORK:
        raise StoreError(f"chain work out of range: {chain_work}")
    return f"{chain_work:064x}"


def _status(status: str) -> str:
    value = str(status)
    if value not in STATUSES:
        raise StoreError(f"unknown header status {status!r}; expected one of {STATUSES}")
    return value


class Store(Queries):
    """The writer. Use it from one thread; give other threads a ``reader()``."""

    def __init__(self, db: Database, *, durable: bool = True) -> None:
        self._db = db
        self._checkpointer: Checkpointer | None = None
        self._depth = 0
        self._durable = durable
        self._fsync = durable
        self._savepoints = itertools.count()

    # --- lifecycle ---------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path, params: ConsensusParams, *, durable: bool = True) -> Store:
        """Open (creating or migrating) the store at ``path`` for ``params.network``.

        ``StoreError`` when the file belongs to another network or genesis, or was
        written by a newer schema than this code knows. ``durable=False`` skips the
        fsync per commit (see ``node.store.schema``): for tests, never for a real node.
        """
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the data directory {path.parent}: {exc}") from exc
        store = cls(Database(path, writer=True, durable=durable), durable=durable)
        try:
            store._migrate()
            store._check_identity(params)
            store._checkpointer = Checkpointer(path, durable=durable)
        except BaseException:
            store.close()
            raise
        return store

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.close()
            self._checkpointer = None
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def reader(self) -> StoreReader:
        """A read-only view on its own connection, for another thread; close it when done."""
        return StoreReader(self._db.path)

    def _schema_version(self) -> int:
        sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
        if self._db.one(sql) is None:
            return 0
        value = self.get_meta("schema_version")
        if value is None:
            return 0
        if not value.isdecimal():
            raise StoreError(f"{self._db.path} has a corrupt schema_version {value!r}")
        return int(value)

    def _migrate(self) -> None:
        with self.transaction():
            version = self._schema_version()
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self._db.path} has schema version {version}, newer than the"
                    f" {SCHEMA_VERSION} this ailedger supports: upgrade ailedger"
                )
            for step in MIGRATIONS[version:]:
                for statement in step:
                    self._db.execute(statement)
            if version < SCHEMA_VERSION:
                self.set_meta("schema_version", str(SCHEMA_VERSION))

    def _check_identity(self, params: ConsensusParams) -> None:
        genesis = genesis_block(params)
        with self.transaction():
            network = self.get_meta("network")
            if network is None:
                self._init_genesis(genesis, params)
                return
            stored_genesis = self.get_meta("genesis_hash")
            if network != params.network or stored_genesis != genesis.hash:
                raise StoreError(
                    f"{self._db.path} holds network {network!r} (genesis {stored_genesis}),"
                    f" not {params.network!r} (genesis {genesis.hash})"
                )

    def _init_genesis(self, genesis: Block, params: ConsensusParams) -> None:
        self.set_meta("network", params.network)
        self.set_meta("genesis_hash", genesis.hash)
        work = block_work(bits_to_target(genesis.header.bits))
        self.put_header(genesis.header, work, "valid", 0)
        self.put_block(genesis)
        self._db.execute("INSERT INTO active (height, hash) VALUES (0, ?)", (genesis.hash,))

    # --- transactions --------------------------------------------------------------------

    @contextmanager
    def transaction(self, *, fsync: bool = True) -> Iterator[None]:
        """One atomic unit: ``BEGIN IMMEDIATE ... COMMIT``, rolled back on any exception.

        Nested calls join the outer transaction through a savepoint: an exception inside
        rolls back the inner part only (and propagates); nothing is durable until the
        outermost block commits.

        ``fsync=False`` commits without waiting for the disk (WAL, ``synchronous=NORMAL``):
        still safe against ``kill -9`` and never corrupt, but a power loss may forget it.
        Chain data uses it (peers can send a block again); an acknowledged client
        transaction never does. The next fsynced commit makes everything before it durable.
        """
        with self._db.lock:
            if self._depth:
                yield from self._nested()
                return
            self._set_fsync(fsync and self._durable)
            self._db.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
            finally:
                self._depth = 0
            if self._checkpointer is not None:
                self._checkpointer.poke()

    def _set_fsync(self, fsync: bool) -> None:
        if fsync != self._fsync:
            self._db.execute(f"PRAGMA synchronous = {'FULL' if fsync else 'NORMAL'}")
            self._fsync = fsync

    def _nested(self) -> Iterator[None]:
        name = f"sp{next(self._savepoints)}"
        self._db.execute(f"SAVEPOINT {name}")
        self._depth += 1
        try:
            yield
        except BaseException:
            # (SQLite may already have rolled back everything, e.g. on a full disk.)
            if self._db.in_transaction:
                self._db.execute(f"ROLLBACK TO {name}")
            raise
        finally:
            self._depth -= 1
            if self._db.in_transaction:
                self._db.execute(f"RELEASE {name}")

    # --- the header tree -----------------------------------------------------------------

    def put_header(
        self, header: Header, chain_work: int, status: str, sequence: int | None
    ) -> None:
        """Insert a header, or update the work and status of a known one (and its sequence,
        unless ``sequence`` is ``None``: a body's arrival order is never forgotten)."""
        self.put_headers([(header, chain_work, status, sequence)])

    def put_headers(self, rows: Iterable[tuple[Header, int, str, int | None]]) -> None:
        """``put_header`` of each (header, chain work, status, sequence), in one statement."""
        params = [
            (h.hash, h.prev_hash, h.height, h.raw, _work_hex(work), _status(status), seq)
            for h, work, status, seq in rows
        ]
        if not params:
            return
        self._db.execute_rows(
            "INSERT INTO headers (hash, prev_hash, height, raw, chain_work, status, sequence)"
            " VALUES {rows} ON CONFLICT (hash) DO UPDATE SET"
            " chain_work = excluded.chain_work, status = excluded.status,"
            " sequence = coalesce(excluded.sequence, sequence)",
            params,
        )

    def set_header_status(self, block_hash: str, status: str, sequence: int | None = None) -> None:
        """Change a known header's status; ``sequence=None`` keeps the stored one."""
        self.set_header_statuses([(block_hash, status, sequence)])

    def set_header_statuses(self, rows: Iterable[tuple[str, str, int | None]]) -> None:
        """``set_header_status`` of each (hash, status, sequence), in one statement."""
        latest: dict[str, tuple[str, str, int | None]] = {}  # one row per hash, as if in turn
        for block_hash, status, sequence in rows:
            earlier = latest.get(block_hash)
            kept = earlier[2] if sequence is None and earlier is not None else sequence
            latest[block_hash] = (block_hash, _status(status), kept)
        params = list(latest.values())
        with self.transaction():
            changed = self._db.execute_rows(
                "UPDATE headers SET status = v.column2, sequence = coalesce(v.column3, sequence)"
                " FROM (VALUES {rows}) AS v WHERE hash = v.column1",
                params,
            )
            if changed != len(params):
                known = self._hashes_in("headers", list(latest))
                unknown = [h for h in latest if h not in known]
                raise StoreError(f"unknown header {', '.join(unknown)}")

    def load_headers(self) -> list[tuple[Header, int, str, int | None]]:
        """Every header with its chain work, status and sequence, parents before children."""
        rows = self._db.all(
            "SELECT raw, chain_work, status, sequence FROM headers ORDER BY height, rowid"
        )
        return [(Header.decode(raw), int(work, 16), status, seq) for raw, work, status, seq in rows]

    def load_chain(self) -> tuple[ChainColumns, list[tuple[Header, int, str, int | None]]]:
        """The header tree for a restart: the active chain as columns, then the headers
        off it as ``load_headers`` rows (see ``node.store.chainload``)."""
        columns = load_chain_columns(self._db.path)
        return columns, load_side_headers(self._db.path, len(columns) - 1)

    def catch_up_chain_index(self) -> int:
        """Write every chunk of the restart index the active chain covers (a store
        written before schema version 3, or by a tool); returns how many."""
        with self.transaction():
            return chainindex.extend(self._db, self.tip()[1], limit=None)

    # --- block bodies --------------------------------------------------------------------

    def put_block(self, block: Block) -> None:
        """Store a block's body (its header must be stored first); idempotent."""
        self.put_blocks([block])

    def put_blocks(self, blocks: Sequence[Block]) -> None:
        """``put_block`` of each, with one statement per table."""
        with self.transaction():
            held = self._hashes_in("blocks", [b.hash for b in blocks])
            fresh = list({b.hash: b for b in blocks if b.hash not in held}.values())
            if not fresh:
                return
            hashes = [b.hash for b in fresh]
            if self._count_in("headers", hashes) != len(hashes):
                headers = self._hashes_in("headers", hashes)
                missing = next(h for h in hashes if h not in headers)
                raise StoreError(f"put_header before put_block for {missing}")
            self._db.execute_rows(
                "INSERT OR IGNORE INTO txs (txid, json) VALUES {rows}",
                [(tx.txid, tx.leaf_bytes.decode()) for b in fresh for tx in b.transactions],
            )
            self._db.execute_rows(
                "INSERT INTO blocks (hash, tx_count) VALUES {rows}",
                [(b.hash, len(b.transactions)) for b in fresh],
            )
            self._db.execute_rows(
                "INSERT INTO block_txs (block_hash, idx, txid) VALUES {rows}",
                [(b.hash, i, tx.txid) for b in fresh for i, tx in enumerate(b.transactions)],
            )

    # --- the active chain ----------------------------------------------------------------

    def connect_blocks(self, blocks: Sequence[Block]) -> None:
        """Make each block in turn the new active tip and index its records (each must
        extend the one before, the first the tip), with one statement per table:
        connecting a synced run is a few writes."""
        with self.transaction():
            tip_hash, tip_height = self.tip()
            for block in blocks:
                header = block.header
                if header.prev_hash != tip_hash or header.height != tip_height + 1:
                    raise StoreError(
                        f"block {block.hash} at {header.height} does not extend the tip"
                        f" {tip_hash} at {tip_height}"
                    )
                tip_hash, tip_height = block.hash, header.height
            self.put_blocks(blocks)
            self._db.execute_rows(
                "INSERT INTO active (height, hash) VALUES {rows}",
                [(b.header.height, b.hash) for b in blocks],
            )
            self._index_blocks(blocks)
            self._delete_mempool([tx.txid for b in blocks for tx in b.transactions])
            chainindex.extend(self._db, tip_height)

    def _index_blocks(self, blocks: Sequence[Block]) -> None:
        """Every index row of the blocks' records, one statement per table."""
        confirmed: list[tuple[str, str, int, int, int, str, str, int]] = []
        digests: list[tuple[str, str, str]] = []
        edges: list[tuple[str, str, str]] = []
        revocations: list[tuple[str, str]] = []
        for block in blocks:
            height = block.header.height
            for index, tx in enumerate(block.transactions):
                txid = tx.txid
                confirmed.append(
                    (
                        txid,
                        block.hash,
                        height,
                        index,
                        position(height, index),
                        tx.kind,
                        tx.signer,
                        tx.nonce,
                    )
                )
                digests.extend((digest, name, txid) for digest, name in records.digests(tx))
                edges.extend((txid, parent, role) for parent, role in records.edges(tx))
                subject = records.revoked_subject(tx)
                if subject is not None:
                    revocations.append((subject, txid))
        db = self._db
        db.execute_rows(
            "INSERT INTO confirmed (txid, block_hash, height, idx, pos, kind, signer, nonce)"
            " VALUES {rows}",
            confirmed,
        )
        db.execute_rows("INSERT INTO digests (digest, field, txid) VALUES {rows}", digests)
        db.execute_rows("INSERT INTO edges (child, parent, role) VALUES {rows}", edges)
        db.execute_rows("INSERT INTO revocations (subject, revoker) VALUES {rows}", revocations)

    def disconnect_block(self, block: Block) -> None:
        """Undo connecting the active tip exactly (the mempool is the caller's)."""
        with self.transaction():
            tip_hash, tip_height = self.tip()
            if block.hash != tip_hash or tip_height == 0:
                raise StoreError(
                    f"can only disconnect the tip {tip_hash} at {tip_height} (not genesis),"
                    f" not {block.hash}"
                )
            # Row by row: SQLite answers "(digest, txid, field) IN (VALUES ..)" with a scan.
            self._db.executemany(
                "DELETE FROM digests WHERE digest = ? AND txid = ? AND field = ?",
                [
                    (digest, tx.txid, name)
                    for tx in block.transactions
                    for digest, name in records.digests(tx)
                ],
            )
            # Edges and revocations go with their record (ON DELETE CASCADE).
            self._db.execute("DELETE FROM confirmed WHERE block_hash = ?", (block.hash,))
            self._db.execute("DELETE FROM active WHERE height = ?", (tip_height,))
            chainindex.truncate(self._db, tip_height)

    # --- the mempool ---------------------------------------------------------------------

    def mempool_add_many(self, txs: Iterable[Transaction], received_ms: int) -> None:
        """Persist pending transactions, in order, with one statement and one commit;
        durable when this returns (outside a transaction: inside a caller's
        ``transaction()`` it joins that one instead). Adding a txid already present
        keeps its first arrival."""
        with self.transaction():
            self._db.execute_rows(
                "INSERT OR IGNORE INTO mempool (txid, json, received_ms) VALUES {rows}",
                [(tx.txid, tx.leaf_bytes.decode(), received_ms) for tx in txs],
            )

    def mempool_remove(self, txids: Iterable[str]) -> None:
        with self.transaction():
            self._delete_mempool(txids)

    def _delete_mempool(self, txids: Iterable[str]) -> None:
        self._db.execute_rows(
            "DELETE FROM mempool WHERE txid IN (VALUES {rows})", [(t,) for t in txids]
        )

    def mempool_load(self) -> list[tuple[Transaction, int]]:
        """Pending transactions with their received time, in arrival order."""
        rows = self._db.all("SELECT json, received_ms FROM mempool ORDER BY seq")
        return [(parse_tx(text), received) for text, received in rows]

    # --- peers and meta --------------------------------------------------------------------

    def peer_upsert(self, url: str, **fields: Any) -> None:
        """Insert a peer or update the given columns of a known one (see ``PEER_FIELDS``)."""
        unknown = set(fields) - PEER_FIELDS
        if unknown:
            raise StoreError(f"unknown peer fields {sorted(unknown)}")
        names = sorted(fields)
        columns = ", ".join(["url", *names])
        marks = ", ".join("?" * (len(names) + 1))
        update = ", ".join(f"{n} = excluded.{n}" for n in names) or "url = excluded.url"
        with self.transaction():
            self._db.execute(
                f"INSERT INTO peers ({columns}) VALUES ({marks})"
                f" ON CONFLICT (url) DO UPDATE SET {update}",
                (url, *(fields[n] for n in names)),
            )

    def peer_delete(self, url: str) -> None:
        with self.transaction():
            self._db.execute("DELETE FROM peers WHERE url = ?", (url,))

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction():
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )
