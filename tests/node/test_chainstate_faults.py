"""Storage failures: after a failed write, the chain state in memory and on disk agree.

Each test makes one write fail, at every step in turn (each statement of the storage
transaction, its savepoints and its COMMIT) of connecting a block and of a reorg. The
operation raises ``StoreError``; the tree, the active chain and the tables are then as
before it, the same state comes back after a restart, and the same operation succeeds
once the storage works again. A full disk (SQLite's SQLITE_FULL, from a page limit) is
one of these failures, with a message that says so.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from consensus.block import Block
from node.chainstate import BlockOutcome, ChainState
from node.store import StoreError
from node.store.db import Database
from tests.node import test_chainstate
from tests.node.conftest import Api
from tests.node.test_chainstate import (
    ALICE,
    BOB,
    GENESIS,
    OpenChain,
    batch,
    fresh,
    mine,
    mine_run,
    tables,
)

open_chain = test_chainstate.open_chain

_RECOVERY = ("ROLLBACK", "RELEASE")
"""Statements that undo a failed transaction: a failure is injected before the others."""


class Faults:
    """Counts the writes on a store's connection; makes the ``fail_at``-th one raise."""

    def __init__(self, db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        self.fail_at: int | None = None
        for name in ("execute", "execute_rows", "executemany"):
            monkeypatch.setattr(db, name, self._wrap(getattr(db, name)))

    def _wrap(self, method: Callable[..., int]) -> Callable[..., int]:
        def write(sql: str, *args: Any) -> int:
            words = sql.lstrip().upper()
            if not words.startswith(("SELECT", "PRAGMA", *_RECOVERY)):
                self.count += 1
                if self.count == self.fail_at:
                    raise StoreError(f"injected failure at write {self.count}: {sql[:40]}")
            return method(sql, *args)

        return write

    def arm(self, at: int | None) -> None:
        self.count, self.fail_at = 0, at


def picture(chain: ChainState) -> dict[str, Any]:
    """The chain state in memory (tree and active chain) and on disk (every table)."""
    tree = chain.tree
    known = [tree.ancestor(chain.tip, h) for h in range(chain.height + 1)]
    known += [e for e in tree.tips() if e not in known]
    return {
        "tip": (chain.tip.hash, chain.height),
        "active": [e.hash for e in chain.active],
        "entries": sorted((e.hash, e.status, e.sequence) for e in known),
        "tips": [e.hash for e in tree.tips()],
        "tables": tables(chain),
    }


def base_chain() -> list[Block]:
    return mine_run(GENESIS.header, [[fresh(ALICE, "a")], [fresh(BOB, "b")], []])


def connect_one(main: list[Block]) -> list[Block]:
    return [mine(main[-1].header, [fresh(ALICE, "c"), fresh(BOB, "d")])]


def reorg(main: list[Block]) -> list[Block]:
    """A heavier branch from height 1 holding one of the main chain's records again."""
    return mine_run(main[0].header, [[fresh(BOB, "b")], [fresh(ALICE, "e")], [], []], salt=5)


@pytest.mark.parametrize("blocks", [connect_one, reorg], ids=["connect", "reorg"])
def test_a_failed_write_at_any_step_changes_nothing(
    open_chain: OpenChain,
    monkeypatch: pytest.MonkeyPatch,
    blocks: Callable[[list[Block]], list[Block]],
) -> None:
    reference = open_chain("reference")
    main = base_chain()
    reference.process_blocks(batch(main))
    new = blocks(main)
    results = reference.process_blocks(batch(new))
    assert all(r.outcome is BlockOutcome.ACCEPTED for r in results)
    assert reference.tip.hash == new[-1].hash
    after = picture(reference)

    steps = 0
    for at in itertools.count(1):  # until the operation has no write left to fail
        name = f"fault-{at}"
        chain = open_chain(name)
        chain.process_blocks(batch(main))
        before = picture(chain)
        faults = Faults(chain.store._db, monkeypatch)
        faults.arm(at)
        try:
            chain.process_blocks(batch(new))
        except StoreError as exc:
            assert "injected failure" in str(exc)
        else:
            assert faults.count < at  # every write of the operation has been failed once
            break
        steps = at
        faults.arm(None)
        assert picture(chain) == before, f"write {at}"
        chain.store.close()
        restarted = open_chain(name)
        assert picture(restarted) == before, f"write {at}, after a restart"
        retried = restarted.process_blocks(batch(new))
        assert [r.outcome for r in retried] == [r.outcome for r in results]
        assert picture(restarted)["tables"] == after["tables"]
        assert picture(restarted)["tip"] == after["tip"]
    assert steps >= 5  # BEGIN, the writes, COMMIT: each was made to fail


def test_a_full_disk_gives_a_clear_error_and_corrupts_nothing(open_chain: OpenChain) -> None:
    chain = open_chain("a")
    main = base_chain()
    chain.process_blocks(batch(main))
    before = picture(chain)
    conn = chain.store._db.conn
    (pages,) = conn.execute("PRAGMA page_count").fetchone()
    conn.execute(f"PRAGMA max_page_count = {pages}")
    big = [fresh(ALICE, f"big-{i}", metadata={"notes": "x" * 3000}) for i in range(40)]
    block = mine(main[-1].header, big)
    with pytest.raises(StoreError, match="disk is full"):
        chain.process_blocks(batch([block]))
    assert picture(chain) == before
    (check,) = conn.execute("PRAGMA integrity_check").fetchone()
    assert check == "ok"
    conn.execute("PRAGMA max_page_count = 1073741823")
    [result] = chain.process_blocks(batch([block]))
    assert (result.outcome, chain.tip.hash) == (BlockOutcome.ACCEPTED, block.hash)


def test_when_the_state_cannot_be_read_back_the_node_is_told_to_stop(
    open_chain: OpenChain, monkeypatch: pytest.MonkeyPatch
) -> None:
    chain = open_chain("a")
    main = base_chain()
    chain.process_blocks(batch(main))
    before = picture(chain)
    stops: list[str] = []
    chain.on_fatal = stops.append
    faults = Faults(chain.store._db, monkeypatch)
    faults.arm(2)

    def unreadable() -> Iterator[None]:
        raise StoreError("disk I/O error")

    monkeypatch.setattr(chain.store, "load_chain", unreadable)
    new = connect_one(main)
    with pytest.raises(StoreError, match="could not be read back"):
        chain.process_blocks(batch(new))
    assert chain.failure is not None and stops == [chain.failure]
    assert "restart the node" in chain.failure
    faults.arm(None)
    with pytest.raises(StoreError, match="could not be read back"):
        chain.process_headers([new[0].header])  # nothing more is written
    monkeypatch.undo()
    chain.store.close()
    restarted = open_chain("a")
    assert picture(restarted) == before
    assert restarted.failure is None


def test_a_disk_error_is_not_a_full_disk() -> None:
    from node.store.db import _translate

    full = sqlite3.OperationalError("database or disk is full")
    full.sqlite_errorcode = sqlite3.SQLITE_FULL  # type: ignore[attr-defined]
    assert "disk is full" in str(_translate(full))
    assert "disk is full" not in str(_translate(sqlite3.OperationalError("disk I/O error")))


async def test_health_answers_503_once_the_chain_state_failed(api: Api) -> None:
    assert (await api.client.get("/healthz")).status_code == 200
    api.node.chain.failure = "storage failed (disk I/O error): restart the node"
    response = await api.client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["error"] == {
        "code": "storage-failed",
        "message": "storage failed (disk I/O error): restart the node",
    }
    api.node.chain.failure = None  # (so the node closes normally)
