"""Two background miners on devnet (real difficulty, ASERT) race and agree on one chain.

Each node mines with its own key, so the miner field of each header says who found it.
Once both have found blocks, node 1 stops; node 0 mines two more blocks, which makes its
chain strictly heavier than anything node 1 could still have in flight (two devnet miners
can tie at the same height, and on equal work each keeps the chain it had). Then node 0
stops too and both must end on the same tip.
"""

from __future__ import annotations

from pathlib import Path

from consensus.keys import private_key_to_pem, public_key_hex
from tests.consensus.conftest import key_from_seed
from tests.functional.conftest import NodeFactory
from tests.functional.framework import TestNode, sync_blocks, wait_until


def miner_key_file(directory: Path, seed: int) -> tuple[Path, str]:
    key = key_from_seed(seed)
    path = directory / f"miner{seed}.pem"
    path.write_bytes(private_key_to_pem(key))
    path.chmod(0o600)
    return path, public_key_hex(key)


def chain_miners(node: TestNode) -> set[str]:
    """Who mined the blocks of ``node``'s active chain."""
    blocks = node.call("GET", "/v1/blocks", params={"from_height": 1, "limit": 500})["blocks"]
    return {b["miner"] for b in blocks}


def set_mining(node: TestNode, enabled: bool) -> None:
    assert node.call("POST", "/v1/admin/mining", json={"enabled": enabled}) == {"mining": enabled}


def test_two_devnet_miners_converge_on_one_tip(make_node: NodeFactory, tmp_path: Path) -> None:
    key0, miner0 = miner_key_file(tmp_path, 1)
    key1, miner1 = miner_key_file(tmp_path, 2)
    node0 = make_node(start=False, network="devnet", args=["--mine", "--miner-key", str(key0)])
    node1 = make_node(
        start=False,
        network="devnet",
        args=["--mine", "--miner-key", str(key1), "--peer", node0.url],
    )
    nodes = [node0, node1]
    for node in nodes:
        node.start(wait=False)
    for node in nodes:
        node.wait_ready()
    assert all(n.status()["mining"] for n in nodes)

    def both_found_blocks() -> bool:
        heights = [n.status()["height"] for n in nodes]
        return min(heights) >= 3 and chain_miners(node0) | chain_miners(node1) >= {miner0, miner1}

    wait_until(both_found_blocks, timeout=75, what="both devnet miners to find blocks")
    assert all(n.status()["peers"] == 1 for n in nodes)

    set_mining(node1, False)
    stopped_at = node1.status()["height"]
    wait_until(
        lambda: node0.status()["height"] >= stopped_at + 2,
        timeout=60,
        what="node 0 to mine on alone",
    )
    set_mining(node0, False)

    sync_blocks(nodes, timeout=60)
    status0, status1 = node0.status(), node1.status()
    assert status0["chain_work"] == status1["chain_work"]
    assert status0["height"] == status1["height"] >= stopped_at + 2
    assert status0["bits"] == status1["bits"]
    assert not status0["mining"] and not status1["mining"]
