"""Read-only queries over the store: blocks, the active chain, records and lineage.

``Queries`` holds every read; the writer ``Store`` inherits it (and so sees its own
uncommitted changes, which the ledger rules need in the middle of a reorg), and
``StoreReader`` runs the same reads on a separate read-only connection for the REST API's
threads. Records are ordered newest first by ``pos``, the (height, index) pair packed
into one integer so that a cursor is a single comparison on an index.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from consensus.block import Block, Header
from consensus.ledger import LedgerView, RecordInfo
from consensus.tx import Transaction
from node.store import records
from node.store.db import Database, Row, StoreError
from node.store.records import RecordRow

__all__ = ["CURSOR_PATTERN", "POS_STRIDE", "Edge", "Queries", "StoreReader", "position"]

POS_STRIDE = 1 << 20
"""More than any block's transaction count (2000), so (height, index) packs into one int."""

K = TypeVar("K")

_BATCH = 500  # bound on SQL variables per statement (SQLite's old default limit is 999)

Edge = tuple[str, str, str]
"""A lineage edge ``(child, parent, role)``."""

_ROW_SELECT = (
    "SELECT c.block_hash, c.height, c.idx, t.json, r.revoker FROM confirmed c"
    " JOIN txs t ON t.txid = c.txid LEFT JOIN revocations r ON r.subject = c.txid"
)


def position(height: int, index: int) -> int:
    return height * POS_STRIDE + index


def parse_tx(text: str) -> Transaction:
    """A stored canonical JSON text back into the identical transaction.

    The text was written from a checked ``Transaction`` (its ``leaf_bytes``), so it is not
    validated again: that is 3x faster than ``Transaction.from_json`` and adds up when
    serving a block of 2000 transactions. Its canonical bytes, and so its txid, are the
    stored ones because RFC 8785 of the parsed object gives back the same text.
    """
    try:
        return Transaction(**json.loads(text))
    except (ValueError, TypeError) as exc:
        raise StoreError(f"a stored transaction does not parse: {exc}") from exc


def _encode_cursor(height: int, index: int) -> str:
    return f"{height}.{index}"


CURSOR_PATTERN = r"^(0|[1-9][0-9]{0,11})\.(0|[1-9][0-9]{0,5})$"
"""What ``_encode_cursor`` writes: a height below 10**12 and an index below 10**6 (<
POS_STRIDE), so the position fits SQLite's 64-bit integers."""


def _decode_cursor(cursor: str) -> int:
    """The ``pos`` a cursor stands for; ``ValueError`` when it is not one of ours."""
    if re.fullmatch(CURSOR_PATTERN, cursor) is None:
        raise ValueError(f"invalid cursor {cursor!r}")
    height, _, index = cursor.partition(".")
    return position(int(height), int(index))


class Queries:
    """Every read the node and the REST API make. Subclasses provide ``_db``."""

    _db: Database

    # --- blocks and the active chain ---------------------------------------------------

    def get_header(self, block_hash: str) -> Header | None:
        row = self._db.one("SELECT raw FROM headers WHERE hash = ?", (block_hash,))
        return None if row is None else Header.decode(row[0])

    def header_raws(self, hashes: Iterable[str]) -> list[bytes]:
        """The 128-byte headers of ``hashes``, in the given order; unknown ones left out."""
        keys = list(hashes)
        found: dict[str, bytes] = {}
        for chunk in _chunks(list(dict.fromkeys(keys))):
            sql = f"SELECT hash, raw FROM headers WHERE hash IN ({_marks(chunk)})"
            found.update((r[0], r[1]) for r in self._db.all(sql, chunk))
        return [found[h] for h in keys if h in found]

    def _hashes_in(self, table: str, hashes: Iterable[str]) -> set[str]:
        """Those of ``hashes`` that ``table`` (``headers`` or ``blocks``) holds."""
        found: set[str] = set()
        for chunk in _chunks(list(dict.fromkeys(hashes))):
            sql = f"SELECT hash FROM {table} WHERE hash IN ({_marks(chunk)})"
            found.update(r[0] for r in self._db.all(sql, chunk))
        return found

    def _count_in(self, table: str, hashes: Iterable[str]) -> int:
        """How many of ``hashes`` (``_hashes_in`` counted): one row back, not one a hash.
        Every row fetched is a GIL hand-off, and while the node syncs each can wait for
        a busy thread's switch interval."""
        count = 0
        for chunk in _chunks(list(dict.fromkeys(hashes))):
            sql = f"SELECT count(*) FROM {table} WHERE hash IN ({_marks(chunk)})"
            row = self._db.one(sql, chunk)
            count += row[0] if row is not None else 0
        return count

    def has_block(self, block_hash: str) -> bool:
        return self._db.one("SELECT 1 FROM blocks WHERE hash = ?", (block_hash,)) is not None

    def get_block(self, block_hash: str) -> Block | None:
        found = self._block_texts(block_hash)
        if found is None:
            return None
        header, texts = found
        return Block(header=header, transactions=tuple(parse_tx(text) for text in texts))

    def block_json_bytes(self, block_hash: str, *, with_header_hex: bool = False) -> bytes | None:
        """The block's JSON form, spliced from the stored canonical transaction texts
        without parsing them: what serving a block to a syncing peer costs."""
        found = self._block_texts(block_hash)
        if found is None:
            return None
        header, texts = found
        head: dict[str, Any] = {"hash": header.hash, "header": header.to_json()}
        if with_header_hex:
            head["header_hex"] = header.raw.hex()
        prefix = json.dumps(head, separators=(",", ":"))[:-1]
        return f'{prefix},"transactions":[{",".join(texts)}]}}'.encode()

    def blocks_json_bytes(self, hashes: Iterable[str], max_bytes: int) -> bytes:
        """``{"blocks": [...]}``, the JSON forms of ``hashes`` in order: up to the first
        block not held, and none after the one that reaches ``max_bytes`` in all."""
        parts: list[bytes] = []
        size = 0
        for block_hash in hashes:
            body = self.block_json_bytes(block_hash)
            if body is None:
                break
            parts.append(body)
            size += len(body)
            if size >= max_bytes:
                break
        return b'{"blocks":[' + b",".join(parts) + b"]}"

    def _block_texts(self, block_hash: str) -> tuple[Header, list[str]] | None:
        with self._db.lock:
            if not self.has_block(block_hash):
                return None
            header = self.get_header(block_hash)
            rows = self._db.all(
                "SELECT t.json FROM block_txs b JOIN txs t ON t.txid = b.txid"
                " WHERE b.block_hash = ? ORDER BY b.idx",
                (block_hash,),
            )
        assert header is not None  # blocks.hash references headers.hash
        return header, [str(r[0]) for r in rows]

    def block_txids(self, block_hash: str) -> list[str] | None:
        """The block's txids in order; ``None`` when we do not hold its body."""
        with self._db.lock:
            if not self.has_block(block_hash):
                return None
            rows = self._db.all(
                "SELECT txid FROM block_txs WHERE block_hash = ? ORDER BY idx", (block_hash,)
            )
        return [r[0] for r in rows]

    def tip(self) -> tuple[str, int]:
        """``(hash, height)`` of the active tip."""
        row = self._db.one("SELECT hash, height FROM active ORDER BY height DESC LIMIT 1")
        if row is None:
            raise StoreError("the store has no active chain")
        return row[0], row[1]

    def active_hash(self, height: int) -> str | None:
        row = self._db.one("SELECT hash FROM active WHERE height = ?", (height,))
        return None if row is None else str(row[0])

    def active_hashes(self, from_height: int, count: int) -> list[str]:
        """Active hashes at ``from_height`` and up, at most ``count`` of them."""
        rows = self._db.all(
            "SELECT hash FROM active WHERE height >= ? ORDER BY height LIMIT ?",
            (max(from_height, 0), max(count, 0)),
        )
        return [r[0] for r in rows]

    # --- the ledger view (consensus.ledger.LedgerView) -------------------------------------

    def record(self, txid: str) -> RecordInfo | None:
        row = self._db.one("SELECT kind, signer FROM confirmed WHERE txid = ?", (txid,))
        return None if row is None else RecordInfo(kind=row[0], signer=row[1])

    def nonce_used(self, signer: str, nonce: int) -> bool:
        sql = "SELECT 1 FROM confirmed WHERE signer = ? AND nonce = ?"
        return self._db.one(sql, (signer, nonce)) is not None

    def is_revoked(self, txid: str) -> bool:
        return self.revoked_by(txid) is not None

    # --- confirmed records -------------------------------------------------------------

    def tx_location(self, txid: str) -> tuple[str, int, int] | None:
        """``(block_hash, height, index)`` of a confirmed transaction."""
        sql = "SELECT block_hash, height, idx FROM confirmed WHERE txid = ?"
        row = self._db.one(sql, (txid,))
        return None if row is None else (row[0], row[1], row[2])

    def get_confirmed_tx(self, txid: str) -> Transaction | None:
        row = self._db.one(
            "SELECT t.json FROM confirmed c JOIN txs t ON t.txid = c.txid WHERE c.txid = ?",
            (txid,),
        )
        return None if row is None else parse_tx(row[0])

    def confirmed_txs_containing(self, text: str) -> list[Transaction]:
        """Confirmed transactions whose stored JSON contains ``text``: a scan of every
        record, for rare start-up work (the blob store finds the records that store their
        artifact with it)."""
        sql = (
            "SELECT t.json FROM confirmed c JOIN txs t ON t.txid = c.txid"
            " WHERE instr(t.json, ?) > 0 ORDER BY c.pos"
        )
        return [parse_tx(row[0]) for row in self._db.all(sql, (text,))]

    def record_row(self, txid: str) -> RecordRow | None:
        row = self._db.one(_ROW_SELECT + " WHERE c.txid = ?", (txid,))
        return None if row is None else _record_row(row)

    def record_rows(self, txids: Iterable[str]) -> dict[str, RecordRow]:
        """``record_row`` of many txids at once (unknown ones are left out)."""
        keys = list(dict.fromkeys(txids))
        found: dict[str, RecordRow] = {}
        for start in range(0, len(keys), _BATCH):
            chunk = keys[start : start + _BATCH]
            marks = ",".join("?" * len(chunk))
            for row in self._db.all(_ROW_SELECT + f" WHERE c.txid IN ({marks})", chunk):
                record = _record_row(row)
                found[record.txid] = record
        return found

    def ledger_for(self, txs: Iterable[Transaction]) -> LedgerView:
        """A ``LedgerView`` of the confirmed records that already holds the answers to what
        the ledger rules will ask when ``txs`` are applied (their txids, references,
        (signer, nonce) pairs, revoked subjects), read with a few statements instead of
        two or more per transaction. Anything else is asked of the store."""
        txids: list[str] = []
        pairs: dict[str, list[int]] = {}
        subjects: list[str] = []
        for tx in txs:
            txids.append(tx.txid)
            txids.extend(ref for ref, _ in tx.refs())
            pairs.setdefault(tx.signer, []).append(tx.nonce)
            subject = records.revoked_subject(tx)
            if subject is not None:
                subjects.append(subject)
        found: dict[str, RecordInfo] = {}
        for chunk in _chunks(list(dict.fromkeys(txids))):
            sql = f"SELECT txid, kind, signer FROM confirmed WHERE txid IN ({_marks(chunk)})"
            found.update(
                (r[0], RecordInfo(kind=r[1], signer=r[2])) for r in self._db.all(sql, chunk)
            )
        used: set[tuple[str, int]] = set()
        for signer, nonces in pairs.items():
            for part in _chunks(nonces):
                sql = f"SELECT nonce FROM confirmed WHERE signer = ? AND nonce IN ({_marks(part)})"
                used.update((signer, r[0]) for r in self._db.all(sql, [signer, *part]))
        revoked: set[str] = set()
        for chunk in _chunks(list(dict.fromkeys(subjects))):
            sql = f"SELECT subject FROM revocations WHERE subject IN ({_marks(chunk)})"
            revoked.update(r[0] for r in self._db.all(sql, chunk))
        asked = {(signer, n) for signer, nonces in pairs.items() for n in nonces}
        return _Prefetched(self, set(txids), found, asked, used, set(subjects), revoked)

    def revoked_by(self, txid: str) -> str | None:
        """The txid of the confirmed revocation of ``txid``, if there is one."""
        row = self._db.one("SELECT revoker FROM revocations WHERE subject = ?", (txid,))
        return None if row is None else str(row[0])

    def records(
        self,
        digest: str | None = None,
        kind: str | None = None,
        signer: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> tuple[list[RecordRow], str | None]:
        """Confirmed records matching every given filter, newest first (height, index).

        Returns the page and the cursor of the next page (``None`` on the last one).
        ``ValueError`` for a limit below 1 or a cursor this store did not hand out.
        """
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        # A digest matches few records: look them up by digest and sort those, rather than
        # walk a kind's or signer's index (unary "+" keeps SQLite off those indexes).
        plus = "+" if digest is not None else ""
        where: list[str] = []
        args: list[Any] = []
        for clause, value in (
            ("c.txid IN (SELECT txid FROM digests WHERE digest = ?)", digest),
            (f"{plus}c.kind = ?", kind),
            (f"{plus}c.signer = ?", signer),
            (f"{plus}c.pos < ?", None if cursor is None else _decode_cursor(cursor)),
        ):
            if value is not None:
                where.append(clause)
                args.append(value)
        sql = _ROW_SELECT + "".join(
            (" WHERE " if i == 0 else " AND ") + w for i, w in enumerate(where)
        )
        rows = self._db.all(sql + " ORDER BY c.pos DESC LIMIT ?", (*args, limit + 1))
        page = [_record_row(row) for row in rows[:limit]]
        more = len(rows) > limit
        return page, _encode_cursor(page[-1].height, page[-1].index) if more else None

    # --- lineage -------------------------------------------------------------------------

    def parents(self, txids: Iterable[str]) -> list[Edge]:
        """Every edge ``(child, parent, role)`` whose child is one of ``txids``."""
        return self._edges("child", txids)

    def children(self, txids: Iterable[str]) -> list[Edge]:
        """Every edge ``(child, parent, role)`` whose parent is one of ``txids``."""
        return self._edges("parent", txids)

    def _edges(self, column: str, txids: Iterable[str]) -> list[Edge]:
        found: list[Edge] = []
        for chunk in _chunks(list(dict.fromkeys(txids))):
            sql = f"SELECT child, parent, role FROM edges WHERE {column} IN ({_marks(chunk)})"
            found.extend((r[0], r[1], r[2]) for r in self._db.all(sql, chunk))
        found.sort()
        return found

    # --- peers and meta --------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        row = self._db.one("SELECT value FROM meta WHERE key = ?", (key,))
        return None if row is None else str(row[0])

    def peer_get(self, url: str) -> dict[str, Any] | None:
        rows = self._peer_rows("WHERE url = ?", (url,))
        return rows[0] if rows else None

    def peers_load(self) -> list[dict[str, Any]]:
        """Every known peer, as dicts of the ``peers`` columns, ordered by url."""
        return self._peer_rows("ORDER BY url", ())

    def _peer_rows(self, tail: str, args: tuple[Any, ...]) -> list[dict[str, Any]]:
        with self._db.guard() as conn:
            cursor = conn.execute(f"SELECT * FROM peers {tail}", args)
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


class _Prefetched:
    """``Queries.ledger_for``: prefetched answers, then the store for anything else."""

    def __init__(
        self,
        store: Queries,
        txids: set[str],
        found: dict[str, RecordInfo],
        nonces: set[tuple[str, int]],
        used: set[tuple[str, int]],
        subjects: set[str],
        revoked: set[str],
    ) -> None:
        self._store = store
        self._txids, self._found = txids, found
        self._nonces, self._used = nonces, used
        self._subjects, self._revoked = subjects, revoked

    def record(self, txid: str) -> RecordInfo | None:
        if txid in self._txids:
            return self._found.get(txid)
        return self._store.record(txid)

    def nonce_used(self, signer: str, nonce: int) -> bool:
        if (signer, nonce) in self._nonces:
            return (signer, nonce) in self._used
        return self._store.nonce_used(signer, nonce)

    def is_revoked(self, txid: str) -> bool:
        if txid in self._subjects:
            return txid in self._revoked
        return self._store.is_revoked(txid)


def _chunks(keys: list[K]) -> Iterator[list[K]]:
    for start in range(0, len(keys), _BATCH):
        yield keys[start : start + _BATCH]


def _marks(chunk: Sequence[object]) -> str:
    return ",".join("?" * len(chunk))


def _record_row(row: Row) -> RecordRow:
    block_hash, height, index, text, revoker = row
    return RecordRow(
        tx=parse_tx(text), block_hash=block_hash, height=height, index=index, revoked_by=revoker
    )


class StoreReader(Queries):
    """The same reads on a separate read-only connection, safe to share across threads
    (calls are serialised by a lock; open one reader per thread for parallel reads)."""

    def __init__(self, path: Path) -> None:
        self._db = Database(path, writer=False)

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Reads inside see one consistent state (a lineage walk of several queries, say),
        even while the writer commits; other callers of this reader wait until it ends."""
        with self._db.lock:
            self._db.execute("BEGIN")
            try:
                yield
            finally:
                self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> StoreReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
