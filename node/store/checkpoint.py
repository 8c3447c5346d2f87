"""Checkpoints on a thread of their own, so that the writer's commits never wait for one.

In WAL mode a commit appends pages to the log; a checkpoint copies them back into the
database file, and once everything is copied the log starts over. SQLite normally has
the committing connection do that every ``wal_autocheckpoint`` pages, inside its COMMIT.
Here the writer only pokes this thread after each commit; when the log has grown past
``CHECKPOINT_PAGES`` the thread runs a PASSIVE checkpoint on its own connection (it
takes no lock the writer or the readers need, and copies what no reader still uses),
while the writer goes on. Syncing a chain, half of every commit was a checkpoint.

The writer keeps SQLite's own checkpoint at ``schema.WAL_FALLBACK_PAGES``, so the log
stays bounded even if this thread falls behind.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from pathlib import Path

__all__ = ["CHECKPOINT_PAGES", "Checkpointer"]

log = logging.getLogger(__name__)

CHECKPOINT_PAGES = 8192
"""32 MiB of 4 KiB pages."""
POKE_INTERVAL_S = 0.1


class Checkpointer:
    def __init__(self, path: Path, *, durable: bool) -> None:
        self._wal = Path(f"{path}-wal")
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA busy_timeout = 10000")
        self._conn.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
        self._page_size: int = self._conn.execute("PRAGMA page_size").fetchone()[0]
        self._wake = threading.Event()
        self._poked = -POKE_INTERVAL_S
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="checkpoint", daemon=True)
        self._thread.start()

    def poke(self) -> None:
        """A commit happened: check the log's size soon (not more often than every
        ``POKE_INTERVAL_S``: a busy API commits thousands of times a second)."""
        now = time.monotonic()
        if now - self._poked >= POKE_INTERVAL_S:
            self._poked = now
            self._wake.set()

    def close(self) -> None:
        self._closing = True
        self._wake.set()
        self._thread.join()
        self._conn.close()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._closing:
                return
            try:
                if self._wal.stat().st_size >= CHECKPOINT_PAGES * self._page_size:
                    self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except (OSError, sqlite3.Error) as exc:  # the writer's fallback still applies
                log.warning("checkpoint failed: %s", exc)
