"""A follower added with ``--scale peer=1`` catches up a 1,000-block chain.

Runs the same compose file on regtest (``compose.regtest.yml``: background miners off)
so that node1 can mine 1,000 blocks in seconds with POST /v1/admin/mine. The time the
new follower takes to reach the tip is recorded as a figure, not asserted.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator

import pytest

from tests.e2e.cluster import Cluster, wait_for_block, wait_until
from tests.e2e.conftest import HERE, MINERS, project_name, record_figure, start_cluster

pytestmark = pytest.mark.timeout(1800)

CHAIN_LENGTH = 1000
MINE_BATCH = 50


@pytest.fixture(scope="module")
def regtest() -> Iterator[Cluster]:
    cluster = Cluster(
        project_name("regtest"),
        overrides=[HERE / "compose.regtest.yml"],
        admin_token=secrets.token_hex(16),
    )
    try:
        start_cluster(cluster, MINERS, "regtest_up_to_all_healthy")
        yield cluster
    finally:
        cluster.down()


def test_scaled_peer_reaches_the_tip_of_a_1000_block_chain(regtest: Cluster) -> None:
    node1 = regtest.node("node1")
    start = time.monotonic()
    while (height := node1.status()["height"]) < CHAIN_LENGTH:
        node1.mine(min(MINE_BATCH, CHAIN_LENGTH - height))
    record_figure("regtest_mine_1000_blocks", time.monotonic() - start, "s")
    tip = node1.status()
    assert tip["height"] == CHAIN_LENGTH
    others = [regtest.node("node2"), regtest.node("node3")]
    wait_for_block(others, tip["height"], tip["best_hash"], timeout=600)

    start = time.monotonic()
    regtest.up(scale={"peer": 1})
    (peer,) = regtest.replicas("peer")
    wait_until(
        lambda: peer.status()["best_hash"] == tip["best_hash"],
        timeout=900,
        what=f"{peer} to reach the tip at height {CHAIN_LENGTH}",
        interval=0.5,
    )
    record_figure("peer_sync_1000_blocks_from_up", time.monotonic() - start, "s")
    wait_until(
        lambda: peer.status()["syncing"] is False,
        timeout=60,
        what=f"{peer} to report that it is no longer syncing",
    )
    for height in (1, CHAIN_LENGTH // 2, CHAIN_LENGTH - 1):
        assert peer.block_hash_at(height) == node1.block_hash_at(height), f"at {height}"
