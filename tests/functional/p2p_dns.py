"""A node started with ``--peer-dns`` dials every address the name resolves to.

On one host the orchestrator's name is ``localhost``: each ``localhost:PORT`` lists this
host, which is another node on another port and the node itself on its own port. The node
connects to the others, never to itself, and starts even when a name does not resolve.
"""

from __future__ import annotations

from tests.functional.conftest import NodeFactory
from tests.functional.framework import TestNode, sync_blocks, wait_until


def peer_urls(node: TestNode) -> set[str]:
    return {p["url"] for p in node.call("GET", "/v1/peers")["peers"]}


def test_a_node_finds_its_peers_by_dns_and_skips_itself(make_node: NodeFactory) -> None:
    node0 = make_node()
    node1 = make_node()
    node0.mine(3)
    node2 = make_node(start=False)
    names = [f"localhost:{node0.port}", f"localhost:{node1.port}", f"localhost:{node2.port}"]
    node2.args += ["--peer-dns", ",".join(names), "--peer-dns", "no-such-service.invalid"]
    node2.args += ["--peer-dns-interval", "1"]
    node2.start()

    wait_until(
        lambda: {node0.url, node1.url} <= peer_urls(node2),
        timeout=60,
        what=f"{node2} to connect to both nodes it resolved",
    )
    sync_blocks([node0, node2])
    assert node2.url not in peer_urls(node2)
    assert node2.status()["height"] == 3
