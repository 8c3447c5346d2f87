"""The restart index (``node.store.chainindex``) follows the active chain through reorgs,
and a node restarted on it has the tree it had before.

Chunks of 4 heights and a margin of 2 (in place of 4,096 and 64) make every case small.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from consensus.chain import BlockTree
from node.chainstate import ChainState
from node.store import chainindex, chainload
from tests.node import test_chainstate
from tests.node.test_chainstate import GENESIS, OpenChain, batch, mine_run
from tests.node.test_store import dump

open_chain = test_chainstate.open_chain


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chainindex, "CHUNK", 4)
    monkeypatch.setattr(chainindex, "MARGIN", 2)
    monkeypatch.setattr(chainload, "CHUNK", 4)


def index_rows(chain: ChainState) -> dict[str, list[Any]]:
    return dump(Path(chain.store._db.path), ("chain_index", "chain_lookup"))


def picture(tree: BlockTree, chain: ChainState) -> dict[str, Any]:
    """Everything a restart must give back: entries, statuses, tips, locators."""
    entries = [tree.ancestor(chain.tip, h) for h in range(chain.height + 1)]
    entries += [e for e in tree.tips() if e not in entries]
    return {
        "len": len(tree),
        "tip": (chain.tip.hash, chain.height, chain.tip.chain_work),
        "active": [e.hash for e in chain.active],
        "tips": [(e.hash, e.status, e.sequence) for e in tree.tips()],
        "locators": [tree.locator(e) for e in entries],
        "statuses": [(e.hash, e.status, e.sequence, e.timestamp, e.bits) for e in entries],
    }


def test_chunks_cover_the_chain_past_the_margin(open_chain: OpenChain) -> None:
    chain = open_chain("a")
    chain.process_blocks(batch(mine_run(GENESIS.header, [[]] * 20)))
    starts = [row[0] for row in index_rows(chain)["chain_index"]]
    assert starts == [0, 4, 8, 12]  # 16..19 waits until the tip passes 21
    [(_, heights, _)] = index_rows(chain)["chain_lookup"]
    assert heights == 16
    before = picture(chain.tree, chain)
    chain.store.close()
    reopened = open_chain("a")
    assert reopened.tree.get(GENESIS.hash) is reopened.tree.genesis
    assert picture(reopened.tree, reopened) == before


def test_a_deep_reorg_rewrites_the_chunks_it_crosses(open_chain: OpenChain) -> None:
    chain = open_chain("a")
    main = mine_run(GENESIS.header, [[]] * 20)
    chain.process_blocks(batch(main))
    heavier = mine_run(main[4].header, [[]] * 18, salt=7)  # forks at height 5
    [*_, last] = chain.process_blocks(batch(heavier))
    assert len(last.reorg.disconnected) == 15
    assert chain.tip.hash == heavier[-1].hash
    rows = index_rows(chain)
    before = picture(chain.tree, chain)
    # What a store written from scratch holds for this chain: the same rows.
    with chain.store.transaction():
        chain.store._db.execute("DELETE FROM chain_index")
        chain.store._db.execute("DELETE FROM chain_lookup")
    assert chain.store.catch_up_chain_index() == 5
    assert index_rows(chain) == rows
    chain.store.close()
    reopened = open_chain("a")
    assert picture(reopened.tree, reopened) == before
    # The old branch is a side branch of the restarted tree, found and walked as before.
    old_tip = reopened.tree.get(main[-1].hash)
    assert old_tip is not None
    assert reopened.tree.fork_point(old_tip, reopened.tip).hash == main[4].hash


def test_a_store_without_chunks_loads_row_by_row_and_catches_up(open_chain: OpenChain) -> None:
    chain = open_chain("a")
    chain.process_blocks(batch(mine_run(GENESIS.header, [[]] * 12)))
    before = picture(chain.tree, chain)
    with chain.store.transaction():  # as a store from schema version 2 would be
        chain.store._db.execute("DELETE FROM chain_index")
        chain.store._db.execute("DELETE FROM chain_lookup")
    chain.store.close()
    reopened = open_chain("a")
    assert picture(reopened.tree, reopened) == before
    tip = reopened.store.get_block(reopened.tip.hash)
    assert tip is not None
    reopened.process_blocks(batch(mine_run(tip.header, [[]])))
    assert [row[0] for row in index_rows(reopened)["chain_index"]] == [0, 4, 8]
