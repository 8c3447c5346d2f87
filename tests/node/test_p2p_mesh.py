"""Whole-network protocol tests on the in-process harness (``tests.node.harness``): several
nodes in this process, talking to each other's apps through an httpx transport. The same
behaviour is tested with real processes in ``tests/functional/p2p_sync.py`` and
``p2p_identity.py``; here it runs without sockets, in seconds."""

from __future__ import annotations

from pathlib import Path

from consensus.genesis import genesis_header
from consensus.params import REGTEST
from node.p2p.identity import NodeKey
from node.p2p.messages import Best, Hello
from node.p2p.sessions import MAX_PENDING
from tests.consensus.conftest import ALICE, dataset_payload, make_tx
from tests.node.conftest import open_session
from tests.node.harness import Member, mesh, same_tip, wait_for
from tests.node.test_chainstate import mine_run


async def linked(member: Member, other: Member) -> bool:
    peer = member.p2p.protocol.peer(other.node.node_id)
    return peer is not None and peer.url == other.url


async def test_nodes_connect_by_proving_their_keys_and_agree_on_the_chain(tmp_path: Path) -> None:
    async with mesh(tmp_path, 3, peers={1: [0], 2: [1]}) as nodes:
        for a, b in [(0, 1), (1, 0), (1, 2), (2, 1)]:
            await wait_for(
                lambda a=a, b=b: linked(nodes[a], nodes[b]),  # type: ignore[misc]
                what=f"node {a} to link {b}",
            )
        await nodes[0].mine(3)
        await wait_for(lambda: same_tip(nodes), what="the nodes to agree")
        await nodes[2].mine(1)
        await wait_for(lambda: same_tip(nodes), what="the nodes to agree again")
        assert {(await n.status())["height"] for n in nodes} == {4}


async def test_a_transaction_crosses_a_hop_and_is_mined_everywhere(tmp_path: Path) -> None:
    async with mesh(tmp_path, 3, peers={1: [0], 2: [1]}) as nodes:
        await wait_for(lambda: linked(nodes[2], nodes[1]), what="node 2 to link node 1")
        await wait_for(lambda: linked(nodes[1], nodes[0]), what="node 1 to link node 0")
        tx = make_tx(ALICE, "dataset", dataset_payload("across-a-hop"))
        response = await nodes[2].client.post("/v1/transactions", json=tx.to_json())
        assert response.status_code == 202, response.text

        async def pending_at_0() -> bool:
            return nodes[0].node.mempool.get(tx.txid) is not None

        await wait_for(pending_at_0, what="the transaction to reach node 0")
        [block] = await nodes[0].mine(1)
        await wait_for(lambda: same_tip(nodes), what="the block to reach every node")
        view = await nodes[2].get(f"/v1/transactions/{tx.txid}")
        assert (view["status"], view["block_hash"]) == ("confirmed", block)


async def test_a_block_submitted_from_outside_is_relayed_to_every_node(tmp_path: Path) -> None:
    async with mesh(tmp_path, 3) as nodes:
        await wait_for(lambda: linked(nodes[0], nodes[2]), what="node 0 to link node 2")
        await wait_for(lambda: linked(nodes[0], nodes[1]), what="node 0 to link node 1")
        [block] = mine_run(genesis_header(REGTEST), [[]])
        response = await nodes[0].client.post("/v1/blocks", json=block.to_json())
        assert response.json() == {"hash": block.hash, "status": "accepted"}
        await wait_for(lambda: same_tip(nodes), what="the block to reach every node")
        assert (await nodes[2].status())["best_hash"] == block.hash


async def test_a_stranger_claiming_a_members_url_is_discouraged_under_its_own_key(
    tmp_path: Path,
) -> None:
    async with mesh(tmp_path, 2) as nodes:
        await wait_for(lambda: linked(nodes[0], nodes[1]), what="node 0 to link node 1")
        liar = NodeKey.from_seed(b"L" * 32)
        headers = await open_session(nodes[0].client, liar, listen_url=nodes[1].url)
        protocol = nodes[0].p2p.protocol
        now = nodes[0].node.clock()
        assert "claimed listen url" in (protocol.discouraged(liar.node_id, now) or "")
        response = await nodes[0].client.get("/p2p/peers", headers=headers)
        assert response.status_code == 401
        assert protocol.discouraged(nodes[1].node.node_id, now) is None
        assert await linked(nodes[0], nodes[1])
        await nodes[1].mine(1)
        await wait_for(lambda: same_tip(nodes), what="the honest nodes to stay in touch")


async def test_a_flood_of_hellos_from_made_up_addresses_stays_bounded(tmp_path: Path) -> None:
    """10,000 hellos, each from a made-up address and a made-up node id, never finished;
    then 50 finished with keys of their own: the node keeps at most ``MAX_PENDING`` of
    them in memory, believes none of the addresses, and keeps its honest peer."""
    async with mesh(tmp_path, 2) as nodes:
        await wait_for(lambda: linked(nodes[0], nodes[1]), what="node 0 to link node 1")
        genesis = genesis_header(REGTEST).hash
        for n in range(10_000):
            hello = Hello(
                "regtest",
                genesis,
                f"{n:064x}",
                "flood",
                f"http://made-up-{n}.test",
                Best(genesis, 0, 1),
                f"{n:064x}",
            )
            response = await nodes[0].client.post("/p2p/hello", json=hello.to_json())
            assert response.status_code == 200
        for n in range(50):
            key = NodeKey.from_seed(n.to_bytes(32, "big"))
            await open_session(nodes[0].client, key, listen_url=f"http://finished-{n}.test")
        protocol = nodes[0].p2p.protocol
        assert protocol.pending_hellos() <= MAX_PENDING
        assert protocol.session_count() <= protocol.max_inbound + protocol.max_outbound
        assert all(".test" not in p.url or p.url == nodes[1].url for p in protocol.table.all())
        rows = await nodes[0].node.run(nodes[0].node.store.peers_load)
        assert [r["url"] for r in rows] == [nodes[1].url]
        await nodes[1].mine(1)
        await wait_for(lambda: same_tip(nodes), what="the honest nodes to stay in touch")
