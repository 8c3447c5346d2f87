"""``deploy/swarm/stack.yml`` deployed on a swarm: three devnet miners and followers.

What an operator does and sees: the nodes find each other through the swarm's DNS alone
(no peer list); a record registered over REST is confirmed on every miner; `docker service
scale` adds followers that join and sync; a miner task that is killed is restarted by the
swarm and catches up; a rolling `docker service update` loses no acknowledged record. The
tests share one stack and run in file order.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterable, Sequence

import pytest

from tests.consensus.conftest import dataset_payload
from tests.e2e.cluster import NodeFailure, ServiceNode, wait_for_block, wait_until
from tests.e2e.conftest import Signer, record_figure
from tests.swarm.conftest import MINERS, miners
from tests.swarm.stack import Stack, confirmed_on, container_state

pytestmark = pytest.mark.timeout(2400)


def fresh_dataset() -> dict[str, object]:
    return dataset_payload(f"corpus-{secrets.token_hex(6)}")


def unconfirmed(nodes: Sequence[ServiceNode], txids: Iterable[str]) -> list[str]:
    """The records in ``txids`` that some node of ``nodes`` has not confirmed."""
    wanted = list(txids)
    everywhere = set(wanted)
    for node in nodes:
        everywhere &= confirmed_on(node, wanted)
    return [t for t in wanted if t not in everywhere]


def wait_confirmed(stack: Stack, txids: Iterable[str], *, timeout: float = 300) -> None:
    """Wait until every miner has confirmed every record in ``txids``."""
    wanted = list(txids)
    wait_until(
        lambda: not unconfirmed(miners(stack), wanted),
        timeout=timeout,
        what=f"{len(wanted)} records to be confirmed on every miner",
        interval=2.0,
    )


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer("devnet")


def test_nodes_find_each_other_by_dns_alone(devnet: Stack) -> None:
    # 3 miners + 2 followers: each node has no --peer, only the tasks.* names.
    nodes = [*miners(devnet), *devnet.replicas("follower")]
    wait_until(
        lambda: all(n.status()["peers"] >= 2 for n in nodes),
        timeout=120,
        what="every node to have peers found by DNS",
    )


def test_record_registered_over_rest_is_confirmed_on_every_miner(
    devnet: Stack, signer: Signer
) -> None:
    txid = devnet.node("node1").submit(signer.tx("dataset", fresh_dataset()))
    wait_confirmed(devnet, [txid])
    views = [n.tx(txid) for n in miners(devnet)]
    assert len({v["block_hash"] for v in views if v}) == 1, views


def test_followers_scaled_to_five_join_and_sync(devnet: Stack, signer: Signer) -> None:
    devnet.scale("follower", 5)
    followers = devnet.wait_tasks("follower", 5)
    tip = devnet.node("node1").status()
    wait_for_block(followers, tip["height"], tip["best_hash"], timeout=300)
    for follower in followers:
        status = follower.status()
        assert status["mining"] is False
        assert status["peers"] >= 2, f"{follower} has too few peers: {status}"
    # A record sent to the newest follower is relayed to the miners and mined.
    relayed = followers[-1].submit(signer.tx("dataset", fresh_dataset()))
    wait_confirmed(devnet, [relayed])


def test_killed_miner_task_is_restarted_by_the_swarm_and_catches_up(
    devnet: Stack, signer: Signer
) -> None:
    node1, _, node3 = miners(devnet)
    # Acknowledged (202) just before a SIGKILL: must not be lost.
    acknowledged = [node3.submit(signer.tx("dataset", fresh_dataset()))]
    killed = node3.cid
    node3.kill()
    acknowledged.append(node1.submit(signer.tx("dataset", fresh_dataset())))
    wait_until(
        lambda: devnet.container_ids("node3") not in ([], [killed]),
        timeout=120,
        what="the swarm to start a new node3 task",
    )
    assert container_state(killed) != "running"
    (restarted,) = devnet.wait_tasks("node3", 1)
    acknowledged.append(restarted.submit(signer.tx("dataset", fresh_dataset())))
    tip = node1.status()
    wait_for_block([restarted], tip["height"], tip["best_hash"], timeout=300)
    try:
        wait_confirmed(devnet, acknowledged)
    finally:
        lost = unconfirmed(miners(devnet), acknowledged)
        record_figure("swarm_records_lost_across_task_kill", len(lost), "records")
    assert not lost


class Submitter(threading.Thread):
    """Registers a record every ``every_s`` seconds, each time through the next node that
    answers (looked up afresh: an update replaces containers), and keeps the txids that
    were acknowledged (202)."""

    def __init__(self, stack: Stack, signer: Signer, every_s: float = 1.0) -> None:
        super().__init__(name="submitter", daemon=True)
        self.stack = stack
        self.signer = signer
        self.every_s = every_s
        self.acknowledged: list[str] = []
        self.refused = 0
        self.done = threading.Event()

    def targets(self) -> list[tuple[str, int]]:
        followers = len(self.stack.container_ids("follower"))
        return [(s, 1) for s in MINERS] + [("follower", i + 1) for i in range(followers)]

    def run(self) -> None:
        turn = 0
        while not self.done.wait(self.every_s):
            targets = self.targets()
            service, replica = targets[turn % len(targets)]
            turn += 1
            try:
                node = self.stack.node(service, replica)
                tx = self.signer.tx("dataset", fresh_dataset())
                self.acknowledged.append(node.submit(tx))
            except NodeFailure:
                self.refused += 1  # a node stopping or starting: not acknowledged


def test_rolling_update_loses_no_record(devnet: Stack) -> None:
    submitter = Submitter(devnet, Signer("devnet"))
    submitter.start()
    try:
        devnet.update("follower", "--force")
        devnet.update("node1", "--force")
    finally:
        submitter.done.set()
        submitter.join()
    assert len(submitter.acknowledged) >= 10, f"only {submitter.acknowledged} acknowledged"
    devnet.wait_tasks("node1", 1)
    devnet.wait_tasks("follower", 5)
    try:
        wait_confirmed(devnet, submitter.acknowledged, timeout=600)
    finally:
        lost = unconfirmed(miners(devnet), submitter.acknowledged)
        record_figure("swarm_records_lost_across_rolling_update", len(lost), "records")
        record_figure(
            "swarm_rolling_update_records_acknowledged", len(submitter.acknowledged), "records"
        )
    assert not lost
