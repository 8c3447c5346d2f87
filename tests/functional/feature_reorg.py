"""A network split in two, both sides mining, then healed: everyone follows the most work.

Nodes 0 and 1 (side A) and node 2 (side B) are cut apart with ``/v1/admin/network``;
both sides mine and take transactions. Side A mines more blocks, so after the heal all
three nodes end on A's branch, node 2 keeps its old branch as a ``valid-fork`` tip, and
no acknowledged transaction is lost: those only side B had confirmed go back to the
mempool (a dependent record with its parent) and are confirmed by the next block.
"""

from __future__ import annotations

from typing import Any

from tests.consensus.conftest import ALICE, BOB, dataset_payload, make_tx, model_payload
from tests.functional.conftest import NodeFactory
from tests.functional.framework import TestNode, sync_blocks, wait_until


def tx_view(node: TestNode, txid: str) -> dict[str, Any]:
    view: dict[str, Any] = node.call("GET", f"/v1/transactions/{txid}", expect=(200, 404))
    return view


def set_network(node: TestNode, active: bool) -> None:
    answer = node.call("POST", "/v1/admin/network", json={"active": active})
    assert answer == {"network_active": active}


def test_partition_then_heal_reorgs_to_most_work_and_keeps_every_transaction(
    make_node: NodeFactory,
) -> None:
    node0 = make_node(start=False)
    node1 = make_node(start=False, args=["--peer", node0.url])
    node2 = make_node(start=False, args=["--peer", node0.url, "--peer", node1.url])
    nodes = [node0, node1, node2]
    for node in nodes:
        node.start(wait=False)
    for node in nodes:
        node.wait_ready()
    wait_until(
        lambda: node2.status()["peers"] >= 2 and node0.status()["peers"] >= 2,
        timeout=30,
        what="the three nodes to connect",
    )
    node0.mine(3)
    sync_blocks(nodes)
    fork_hash = node0.status()["best_hash"]

    # --- partition: node 2 alone -----------------------------------------------------------
    set_network(node2, False)
    assert node2.status()["network_active"] is False
    wait_until(lambda: node2.status()["peers"] == 0, timeout=30, what="node 2 to drop its peers")

    shared = make_tx(ALICE, "dataset", dataset_payload("submitted-on-both-sides"))
    side_a = [make_tx(ALICE, "dataset", dataset_payload(f"side-a-{i}")) for i in range(3)]
    dataset_b = make_tx(BOB, "dataset", dataset_payload("side-b-parent"))
    model_b = make_tx(
        BOB, "model", model_payload("side-b-child", inputs=[(dataset_b.txid, "training_data")])
    )
    acknowledged: dict[str, list[TestNode]] = {}
    for tx in [*side_a, shared]:
        node1.submit(tx)  # 202, or submit() fails the test
        acknowledged[tx.txid] = [node1]
    for tx in (shared, dataset_b, model_b):
        node2.submit(tx)
        acknowledged.setdefault(tx.txid, []).append(node2)
    wait_until(
        lambda: all(tx_view(node0, tx.txid).get("status") == "pending" for tx in [*side_a, shared]),
        timeout=30,
        what="side A's transactions to reach node 0",
    )

    branch_a = node0.mine(3)  # side A: more work
    node2.mine(1)  # side B: the dataset, its model and the shared record in one block ...
    branch_b = node2.mine(1)  # ... and one more
    sync_blocks([node0, node1])
    assert node2.status()["best_hash"] == branch_b[-1]
    assert node1.status()["best_hash"] == branch_a[-1]
    for tx in (shared, dataset_b, model_b):
        assert tx_view(node2, tx.txid)["height"] == 4, tx.kind
    assert tx_view(node0, dataset_b.txid).get("status") is None  # never crossed the split

    # --- heal ---------------------------------------------------------------------------
    set_network(node2, True)
    sync_blocks(nodes, timeout=60)
    for node in nodes:
        status = node.status()
        assert (status["best_hash"], status["height"]) == (branch_a[-1], 6), node

    tips = {t["hash"]: t for t in node2.call("GET", "/v1/chain/tips")["tips"]}
    assert tips[branch_a[-1]]["status"] == "active"
    old = tips.get(branch_b[-1])
    assert old is not None, f"node 2 forgot its old branch: {tips}"
    assert (old["status"], old["height"], old["branch_len"]) == ("valid-fork", 5, 2)
    assert node2.call("GET", f"/v1/blocks/{branch_b[-1]}")["header"]["height"] == 5
    assert node2.call("GET", "/v1/blocks/3")["hash"] == fork_hash

    # Side B's own records are pending again (on node 2 and, relayed, on node 0); the
    # shared one stays confirmed, now in side A's branch.
    returned = [dataset_b.txid, model_b.txid]
    assert [tx_view(node2, txid)["status"] for txid in returned] == ["pending", "pending"]
    wait_until(
        lambda: all(tx_view(node0, txid).get("status") == "pending" for txid in returned),
        timeout=30,
        what="side B's returned records to reach node 0",
    )
    assert tx_view(node2, shared.txid)["block_hash"] in branch_a

    last = node0.mine(1)[0]
    sync_blocks(nodes)
    for txid, where in acknowledged.items():
        for node in nodes:
            view = tx_view(node, txid)
            assert view.get("status") == "confirmed", (node, txid, where, view)
    for node in nodes:
        assert node.tx(model_b.txid)["block_hash"] == last
        assert node.status()["mempool"]["count"] == 0, node
