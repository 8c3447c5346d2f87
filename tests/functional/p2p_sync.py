"""Nodes find each other, agree on one chain, and see each other's transactions.

Three nodes converge and relay transactions across a hop; a fourth joins from a single
seed, catches up on a 500-block chain and learns the other nodes by discovery; a block
whose parent the node does not know makes it sync headers and blocks from the sender;
a chain longer than one header run comes in pipelined header runs and runs of blocks.
"""

from __future__ import annotations

from typing import Any

from consensus.tx import Transaction
from node.p2p.sync import MAX_HEADERS
from tests.consensus.conftest import ALICE, BOB, dataset_payload, make_tx, model_payload
from tests.functional.conftest import NodeFactory
from tests.functional.fakepeer import FakePeer
from tests.functional.framework import TestNode, sync_blocks, wait_until


def tx_status(node: TestNode, txid: str) -> str | None:
    view: dict[str, Any] = node.call("GET", f"/v1/transactions/{txid}", expect=(200, 404))
    status: str | None = view.get("status")
    return status


def peer_urls(node: TestNode) -> set[str]:
    return {p["url"] for p in node.call("GET", "/v1/peers")["peers"]}


def start_all(nodes: list[TestNode]) -> None:
    """Start nodes side by side (starting is the slow part of these tests)."""
    for node in nodes:
        node.start(wait=False)
    for node in nodes:
        node.wait_ready()


def test_three_nodes_converge_and_relay_transactions(make_node: NodeFactory) -> None:
    node0 = make_node(start=False)
    node1 = make_node(start=False, args=["--peer", node0.url])
    node2 = make_node(start=False, args=["--peer", node1.url])  # node 0 only through node 1
    nodes = [node0, node1, node2]
    start_all(nodes)
    wait_until(
        lambda: all(n.status()["peers"] >= 1 for n in nodes),
        timeout=30,
        what="every node to have a peer",
    )

    node0.mine(5)
    sync_blocks(nodes)
    node1.mine(2)
    sync_blocks(nodes)
    assert {n.status()["height"] for n in nodes} == {7}

    # A transaction submitted at the third node is mined by the first, confirmed on all.
    dataset = make_tx(ALICE, "dataset", dataset_payload("relayed"))
    relay_and_confirm(dataset, entry=node2, miner=node0, nodes=nodes)
    # And the other way round, with a record that refers to the first one.
    model = make_tx(
        BOB, "model", model_payload("relayed-model", inputs=[(dataset.txid, "training_data")])
    )
    relay_and_confirm(model, entry=node0, miner=node2, nodes=nodes)
    for node in nodes:
        assert node.status()["mempool"]["count"] == 0, node


def test_new_node_syncs_long_chain_from_one_seed_and_discovers_peers(
    make_node: NodeFactory,
) -> None:
    node0 = make_node(start=False)
    node1 = make_node(start=False, args=["--peer", node0.url])
    node2 = make_node(start=False, args=["--peer", node0.url])
    start_all([node0, node1, node2])
    for _ in range(5):
        node0.mine(100)
    sync_blocks([node0, node1, node2], timeout=120)

    joiner = make_node(args=["--peer", node0.url])
    sync_blocks([node0, joiner], timeout=120)
    wait_until(lambda: not joiner.status()["syncing"], timeout=30, what="the sync to end")
    status = joiner.status()
    assert status["height"] == 500
    assert status["chain_work"] == node0.status()["chain_work"]

    # Its only seed told it about the others, and it connected to them.
    wait_until(
        lambda: joiner.status()["peers"] >= 3,
        timeout=60,
        what="the joining node to connect to peers it discovered",
    )
    assert {node1.url, node2.url} <= peer_urls(joiner)

    # It is a full member now: it mines, and everyone follows.
    tip = joiner.mine(1)[0]
    sync_blocks([node0, node1, node2, joiner])
    assert node2.status()["best_hash"] == tip


def test_block_with_unknown_parent_triggers_header_sync_with_its_sender(
    make_node: NodeFactory,
) -> None:
    node = make_node()
    node.mine(3)
    with FakePeer() as fake:
        fake.copy_chain(node)
        assert fake.send_hello(node).status_code == 200
        fake.announce = fake.tip  # what it said in its hello: no more work than the node

        # The fake peer finds five blocks (one with a record) and announces only the last.
        tx = make_tx(ALICE, "dataset", dataset_payload("from-the-fake-peer"))
        new = fake.extend(5, txs=[tx])
        answer = fake.push_block(node, new[-1]).json()
        assert answer["status"] == "need-parents", answer

        wait_until(
            lambda: node.status()["best_hash"] == new[-1].hash,
            timeout=30,
            what="the node to sync the fake peer's chain",
        )
        assert fake.received("POST", "/p2p/headers"), "the node did not ask for headers"
        assert {b.hash for b in new[:-1]} <= set(fake.fetched())
        assert node.status()["height"] == 8
        assert node.tx(tx.txid)["block_hash"] == new[0].hash
        peers = {p["url"]: p for p in node.call("GET", "/v1/peers")["peers"]}
        assert peers[fake.url]["discouraged"] is False


def relay_and_confirm(
    tx: Transaction, *, entry: TestNode, miner: TestNode, nodes: list[TestNode]
) -> None:
    """Submit at ``entry``; gossip brings it to ``miner``, whose block confirms it on all."""
    entry.submit(tx)
    wait_until(
        lambda: tx_status(miner, tx.txid) == "pending",
        timeout=30,
        what=f"transaction {tx.txid[:12]} to reach {miner}",
    )
    mined = miner.mine(1)[0]
    sync_blocks(nodes)
    for node in nodes:
        view = node.tx(tx.txid)
        assert (view["status"], view["block_hash"]) == ("confirmed", mined), node


def test_a_chain_longer_than_one_header_run_syncs_in_runs(make_node: NodeFactory) -> None:
    """4,100 blocks: two full header runs and a partial one (each next run asked for by
    the last header of the one before), then the bodies in runs of blocks."""
    node = make_node()
    with FakePeer() as fake:
        new = fake.extend(2 * MAX_HEADERS + 100)
        assert fake.send_hello(node).status_code == 200  # claims more work: the node syncs
        wait_until(
            lambda: node.status()["best_hash"] == new[-1].hash,
            timeout=120,
            what="the node to sync 4,100 blocks",
        )
        locators = [r.body["locator"] for r in fake.received("POST", "/p2p/headers")]
        assert locators[1:3] == [[new[MAX_HEADERS - 1].hash], [new[2 * MAX_HEADERS - 1].hash]]
        assert sorted(fake.fetched()) == sorted(b.hash for b in new)
        runs = fake.received("GET", "/p2p/blocks?")
        assert len(runs) < len(new) / 8, "blocks were not fetched in runs"
    assert node.status()["height"] == len(new)
    assert not node.status()["syncing"]
