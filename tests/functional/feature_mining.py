"""The background miner: separate processes, the API stays up, on/off from the admin API."""

from __future__ import annotations

from tests.consensus.conftest import ALICE, dataset_payload, make_tx
from tests.functional.conftest import NodeFactory
from tests.functional.framework import wait_until


def test_background_miner_confirms_transactions_and_stops(make_node: NodeFactory) -> None:
    node = make_node(args=["--mine"])
    wait_until(lambda: node.status()["height"] >= 3, timeout=30, what="the miner to find blocks")
    assert node.status()["mining"] is True
    tx = make_tx(ALICE, "dataset", dataset_payload("mined"))
    node.submit(tx)
    wait_until(
        lambda: node.tx(tx.txid)["status"] == "confirmed",
        timeout=30,
        what="the miner to confirm the transaction",
    )

    assert node.call("POST", "/v1/admin/mining", json={"enabled": False}) == {"mining": False}
    height = node.status()["height"]
    assert node.status()["height"] == height  # stopped: no new blocks
    assert node.call("POST", "/v1/admin/mining", json={"enabled": True}) == {"mining": True}
    wait_until(lambda: node.status()["height"] > height, timeout=30, what="mining to resume")
    node.stop()  # SIGTERM stops miner workers too
