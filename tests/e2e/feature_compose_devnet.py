"""The user-facing ``docker-compose.yml``, as deployed: three devnet miners in containers.

What a user does and sees: records registered over REST from the host end up confirmed
on every node; a miner that is killed comes back and catches up; a miner cut off the
network mines its own branch and, once reconnected, follows the heavier one without
losing an acknowledged record; ``--scale peer=N`` adds followers that sync and relay.
The tests share one cluster and run in file order; each leaves every miner running,
connected and mining.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence

import pytest

from tests.consensus.conftest import dataset_payload, inference_payload, model_payload
from tests.e2e.cluster import (
    Cluster,
    ServiceNode,
    wait_for_block,
    wait_same_tip,
    wait_until,
)
from tests.e2e.conftest import Signer

pytestmark = pytest.mark.timeout(900)


def fresh_dataset() -> dict[str, object]:
    return dataset_payload(f"corpus-{secrets.token_hex(6)}")


def wait_confirmed(
    nodes: Sequence[ServiceNode], txids: Iterable[str], *, timeout: float = 300
) -> None:
    wanted = list(txids)
    wait_until(
        lambda: all(n.confirmed(t) for n in nodes for t in wanted),
        timeout=timeout,
        what=f"{len(wanted)} records to be confirmed on {list(nodes)}",
    )


def wait_height(node: ServiceNode, height: int, *, timeout: float = 300) -> None:
    wait_until(
        lambda: node.status()["height"] >= height,
        timeout=timeout,
        what=f"{node} to reach height {height}",
    )


def work(status: dict[str, object]) -> int:
    return int(str(status["chain_work"]), 16)


def test_lineage_registered_over_rest_is_confirmed_on_every_miner(
    miners: list[ServiceNode], signer: Signer
) -> None:
    node1 = miners[0]
    dataset = node1.submit(signer.tx("dataset", fresh_dataset()), via="host")
    model = node1.submit(
        signer.tx("model", model_payload("classifier", inputs=[(dataset, "training_data")])),
        via="host",
    )
    inference = node1.submit(signer.tx("inference", inference_payload(model)), via="host")

    wait_confirmed(miners, [dataset, model, inference])

    def same_block_everywhere() -> bool:
        for txid in (dataset, model, inference):
            views = [n.tx(txid) for n in miners]
            if len({v["block_hash"] for v in views if v}) != 1:
                return False
        return True

    wait_until(same_block_everywhere, timeout=120, what="each record in one block everywhere")
    for node in miners:
        lineage = node.call(
            "GET", f"/v1/records/{inference}/lineage?direction=ancestors&depth=5", via="host"
        )
        found = {n["txid"] for n in lineage["nodes"]}
        assert {dataset, model, inference} <= found, f"{node} lineage: {lineage}"


def test_killed_miner_restarts_and_catches_up(
    devnet: Cluster, miners: list[ServiceNode], signer: Signer
) -> None:
    node1, node2, node3 = miners
    # Acknowledged (202) just before a SIGKILL: must not be lost.
    before_kill = node3.submit(signer.tx("dataset", fresh_dataset()), via="host")
    node3.kill()
    assert node3.inspect("{{.State.Running}}") == "false", f"{node3} still runs after kill"

    height = node1.status()["height"]
    while_down = node1.submit(signer.tx("dataset", fresh_dataset()), via="host")
    # The other two keep mining without it.
    wait_height(node1, height + 3)
    wait_confirmed([node1, node2], [while_down])

    node3.start()
    devnet.wait_healthy([node3])
    tip = node1.status()
    wait_for_block([node2, node3], tip["height"], tip["best_hash"])
    wait_confirmed(miners, [before_kill, while_down])


def test_partitioned_miner_rejoins_the_heavier_branch_without_losing_records(
    miners: list[ServiceNode], signer: Signer
) -> None:
    node1, node2, node3 = miners
    majority = [node1, node2]
    fork_height = node1.status()["height"]
    node3.disconnect()
    try:
        try:
            # Each side acknowledges a record the other never hears of, and mines it.
            on_majority = node1.submit(signer.tx("dataset", fresh_dataset()), via="host")
            on_minority = node3.submit(signer.tx("dataset", fresh_dataset()), via="exec")
            wait_height(node3, fork_height + 2)
            wait_height(node1, fork_height + 2)
            wait_confirmed([node3], [on_minority])
            wait_confirmed(majority, [on_majority])

            # Freeze both sides with the majority strictly heavier: the outcome is known.
            node3.set_mining(False)
            minority = node3.status()
            wait_until(
                lambda: work(node1.status()) > work(minority),
                timeout=300,
                what="the majority to outweigh the minority",
            )
            for node in majority:
                node.set_mining(False)
            wait_same_tip(majority)
            heavier = node1.status()
            assert node3.status()["best_hash"] == minority["best_hash"], "node3 not cut off"
            assert node1.block_hash_at(minority["height"]) != minority["best_hash"], "no fork"
        finally:
            node3.reconnect()

        assert wait_same_tip(miners, timeout=300) == heavier["best_hash"]
        assert node3.block_hash_at(minority["height"]) != minority["best_hash"]
        tips = {t["hash"]: t["status"] for t in node3.call("GET", "/v1/chain/tips")["tips"]}
        assert tips.get(heavier["best_hash"]) == "active"
    finally:
        for node in miners:
            node.set_mining(True)
    # The minority's record went back to its mempool; mining confirms it on the winner.
    wait_confirmed(miners, [on_majority, on_minority])


def test_scaled_peers_sync_and_relay(
    devnet: Cluster, miners: list[ServiceNode], signer: Signer
) -> None:
    node1 = miners[0]
    devnet.up(scale={"peer": 2})
    peers = devnet.replicas("peer")
    assert len(peers) == 2, f"expected 2 peer replicas, have {peers}"
    devnet.wait_healthy(peers)
    assert all(p.host_url() is None for p in peers), "followers publish no ports"

    tip = node1.status()
    wait_for_block(peers, tip["height"], tip["best_hash"])
    for peer in peers:
        status = peer.status()
        assert status["mining"] is False
        assert status["peers"] >= 1, f"{peer} has no peers: {status}"

    # A record sent to a follower is relayed to the miners, mined, and the block comes back.
    relayed = peers[0].submit(signer.tx("dataset", fresh_dataset()))
    wait_confirmed([*miners, *peers], [relayed])
    views = [n.tx(relayed) for n in (*miners, *peers)]
    assert len({v["block_hash"] for v in views if v}) == 1
