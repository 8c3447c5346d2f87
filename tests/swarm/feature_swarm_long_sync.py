"""A follower added with ``docker service scale`` catches up a 1,000-block chain.

Deploys the same stack on regtest with the background miners off, so that node1 mines
1,000 blocks in seconds with POST /v1/admin/mine, and no follower at first. The time the
scaled-in follower takes to reach the tip is recorded as a figure, not asserted.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.e2e.cluster import wait_for_block, wait_until
from tests.e2e.conftest import record_figure
from tests.swarm.conftest import deploy, miners, new_stack
from tests.swarm.stack import Stack

pytestmark = pytest.mark.timeout(2400)

CHAIN_LENGTH = 1000
MINE_BATCH = 100


@pytest.fixture(scope="module")
def regtest() -> Iterator[Stack]:
    stack = new_stack(
        "regtest", followers=0, env={"AILEDGER_NETWORK": "regtest", "AILEDGER_MINE": "false"}
    )
    try:
        deploy(stack, "regtest", followers=0)
        yield stack
    finally:
        stack.down()


def test_scaled_follower_reaches_the_tip_of_a_1000_block_chain(regtest: Stack) -> None:
    node1, node2, node3 = miners(regtest)
    while (height := node1.status()["height"]) < CHAIN_LENGTH:
        node1.mine(min(MINE_BATCH, CHAIN_LENGTH - height))
    tip = node1.status()
    assert tip["height"] == CHAIN_LENGTH
    wait_for_block([node2, node3], tip["height"], tip["best_hash"], timeout=900)

    start = time.monotonic()
    regtest.scale("follower", 1)
    (follower,) = regtest.wait_tasks("follower", 1)
    wait_until(
        lambda: follower.status()["best_hash"] == tip["best_hash"],
        timeout=900,
        what=f"{follower} to reach the tip at height {CHAIN_LENGTH}",
        interval=0.5,
    )
    record_figure("swarm_follower_sync_1000_blocks_from_scale", time.monotonic() - start, "s")
    for height in (1, CHAIN_LENGTH // 2, CHAIN_LENGTH - 1):
        assert follower.block_hash_at(height) == node1.block_hash_at(height), f"at {height}"
