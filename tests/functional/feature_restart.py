"""A node killed with SIGKILL loses nothing it acknowledged, and resumes from disk."""

from __future__ import annotations

import signal
import threading

import httpx

from tests.consensus.conftest import ALICE, dataset_payload, make_tx
from tests.functional.conftest import NodeFactory
from tests.functional.framework import wait_until


def test_kill9_keeps_chain_and_acknowledged_mempool(make_node: NodeFactory) -> None:
    node = make_node()
    confirmed = [make_tx(ALICE, "dataset", dataset_payload(f"c{i}")) for i in range(5)]
    for tx in confirmed:
        node.submit(tx)
    hashes = node.mine(3)
    pending = [make_tx(ALICE, "dataset", dataset_payload(f"p{i}")) for i in range(5)]
    for tx in pending:
        node.submit(tx)

    node.kill9()
    node.start()

    status = node.status()
    assert (status["height"], status["best_hash"]) == (3, hashes[-1])
    assert status["mempool"]["count"] == len(pending)
    for tx in confirmed:
        assert node.tx(tx.txid)["status"] == "confirmed"
    for tx in pending:
        assert node.tx(tx.txid)["status"] == "pending"
    node.mine(1)
    assert all(node.tx(tx.txid)["height"] == 4 for tx in pending)


def test_kill9_under_load_loses_no_acknowledged_transaction(make_node: NodeFactory) -> None:
    node = make_node()
    txs = [make_tx(ALICE, "dataset", dataset_payload(f"load{i}")) for i in range(400)]
    acknowledged: list[str] = []
    done = threading.Event()

    def submit_all() -> None:
        with httpx.Client(base_url=node.url, timeout=10.0) as client:
            for tx in txs:
                try:
                    response = client.post("/v1/transactions", json=tx.to_json())
                except httpx.HTTPError:
                    break  # the node died under us: what was acknowledged counts
                if response.status_code == 202:
                    acknowledged.append(tx.txid)
        done.set()

    submitter = threading.Thread(target=submit_all)
    submitter.start()
    while len(acknowledged) < 50 and not done.is_set():
        done.wait(0.01)
    node.mine(1)  # some go into a block, the rest stay pending
    node.kill9()
    submitter.join(timeout=30)

    node.start()
    assert len(acknowledged) >= 50
    for txid in acknowledged:
        assert node.tx(txid)["status"] in ("pending", "confirmed"), txid


def test_sigterm_stops_the_node_leaving_no_temporary_files(make_node: NodeFactory) -> None:
    node = make_node()
    # The check workers' fork server listens on a socket in a directory of its own.
    wait_until(lambda: any(node.tmp_dir.iterdir()), what="the fork server's socket directory")
    process = node.process
    assert process is not None
    node.stop()
    assert process.returncode == 128 + signal.SIGTERM  # through the interpreter, not around it
    assert list(node.tmp_dir.iterdir()) == []
