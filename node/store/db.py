"""A thin, locked wrapper over one sqlite3 connection that speaks ``StoreError``.

Every SQLite failure surfaces as ``StoreError`` (``raise ... from exc``): a storage
failure is the node's problem, never evidence that a peer sent bad data (Bitcoin's
MODE_ERROR versus MODE_INVALID). The lock is re-entrant so a transaction can hold it
while the methods it calls take it again.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from node.store.schema import configure

__all__ = ["Database", "Row", "StoreError"]

Row = tuple[Any, ...]


class StoreError(Exception):
    """The store failed (I/O, corruption, a schema or network mismatch, a misuse)."""


def _translate(exc: sqlite3.Error) -> StoreError:
    if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
        return StoreError(
            f"the disk is full ({exc}): nothing of this change was written;"
            " free some space and try again"
        )
    return StoreError(f"{type(exc).__name__}: {exc}")


MAX_ROWS = 256
"""Rows in one statement of ``execute_rows``: 2,048 parameters at the widest table's 8."""


def _chunk_sizes(count: int, cap: int) -> Iterator[int]:
    """``count`` as ``cap``-sized chunks, then the powers of two of the rest, largest first."""
    whole, rest = divmod(count, cap)
    yield from [cap] * whole
    for bit in reversed(range(rest.bit_length())):
        if rest >> bit & 1:
            yield 1 << bit


class Database:
    """One connection, guarded by a re-entrant lock, with SQLite errors translated."""

    def __init__(self, path: Path, *, writer: bool, durable: bool = True) -> None:
        try:
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open {path}: {exc}") from exc
        try:
            configure(conn, writer=writer, durable=durable)
        except sqlite3.Error as exc:
            conn.close()
            raise StoreError(f"cannot configure {path}: {exc}") from exc
        self.path = path
        self.lock = threading.RLock()
        self._conn: sqlite3.Connection | None = conn

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"the store at {self.path} is closed")
        return self._conn

    @contextmanager
    def guard(self) -> Iterator[sqlite3.Connection]:
        """Hold the lock and translate SQLite errors for the duration."""
        with self.lock:
            try:
                yield self.conn
            except sqlite3.Error as exc:
                raise _translate(exc) from exc

    # The hot paths below hold the lock and translate errors inline rather than through
    # ``guard()``: they run several times per transaction checked.

    def execute(self, sql: str, args: Sequence[Any] = ()) -> int:
        """Run one statement; returns the number of rows it changed."""
        with self.lock:
            try:
                return self.conn.execute(sql, args).rowcount
            except sqlite3.Error as exc:
                raise _translate(exc) from exc

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> int:
        """Run one statement per row; returns the number of rows they changed in all.

        For a few rows on a rare path (a disconnected block's digests): bulk writes go
        through ``execute_rows``.
        """
        with self.lock:
            try:
                return self.conn.executemany(sql, rows).rowcount
            except sqlite3.Error as exc:
                raise _translate(exc) from exc

    def execute_rows(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        """Run ``sql`` for all of ``rows`` (each of the same width), ``{rows}`` in it standing
        for ``(?, ..), (?, ..), ..``; returns the number of rows changed in all.

        Many rows go in one statement, not one statement each as ``executemany`` does:
        sqlite3 lets go of the GIL around every statement step and must take it back
        afterwards, and while other threads are busy (the event loop, the checkpointer)
        each taking back can wait a whole switch interval. Row by row, that convoy made
        the chain worker's inserts of a synced run take 2.7 times their CPU time (7 times
        for the transactions' texts). Chunks are ``MAX_ROWS`` and then powers of two, so a
        few prepared statements (sqlite3 caches them by text) serve every count.
        """
        if not rows:
            return 0
        width = len(rows[0])
        marks = "(" + ", ".join("?" * width) + ")"
        changed = 0
        with self.lock:
            try:
                start = 0
                for size in _chunk_sizes(len(rows), MAX_ROWS):
                    chunk = rows[start : start + size]
                    start += size
                    text = sql.format(rows=", ".join([marks] * size))
                    args = [value for row in chunk for value in row]
                    changed += self.conn.execute(text, args).rowcount
            except sqlite3.Error as exc:
                raise _translate(exc) from exc
        return changed

    def one(self, sql: str, args: Sequence[Any] = ()) -> Row | None:
        with self.lock:
            try:
                row: Row | None = self.conn.execute(sql, args).fetchone()
            except sqlite3.Error as exc:
                raise _translate(exc) from exc
            return row

    def all(self, sql: str, args: Sequence[Any] = ()) -> list[Row]:
        with self.lock:
            try:
                return self.conn.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise _translate(exc) from exc

    @property
    def in_transaction(self) -> bool:
        return self.conn.in_transaction

    def close(self) -> None:
        with self.lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
