"""No node can speak for another (design.md §5, node identity).

A fake peer tries what a stranger on the network can: claim an honest node's node_id or
listen URL, replay a hello it captured, use a session that is not its own, push invalid
blocks and transactions under another node's name, and flood the node with hellos from
made-up addresses. After each attempt the two honest nodes are still connected to each
other and undiscouraged, the liar is refused (401, or 403 once discouraged under its own
node key), and nothing it made up reached the node's address book, in memory or on disk.
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from node.p2p.messages import Best, Hello
from tests.consensus.conftest import ALICE, dataset_payload, make_tx
from tests.functional.fakepeer import FakePeer, forged_signature, with_bad_pow
from tests.functional.framework import TestNode, free_port, sync_blocks, wait_until

Honest = tuple[TestNode, TestNode]


@pytest.fixture(scope="module")
def honest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Honest]:
    """Two connected regtest nodes; node 0 is the one attacked."""
    root: Path = tmp_path_factory.mktemp("p2p_identity")
    node0 = TestNode(0, root)
    node1 = TestNode(1, root, args=["--peer", node0.url])
    try:
        node0.start()
        node1.start()
        wait_until(
            lambda: linked(node0, node1) and linked(node1, node0),
            timeout=30,
            what="the honest nodes to connect",
        )
        node0.mine(2)
        sync_blocks([node0, node1])
        yield node0, node1
    except BaseException:
        for node in (node0, node1):
            print(f"\n----- log of {node} -----\n{node.log_tail(60)}")
        raise
    finally:
        node0.close()
        node1.close()


@pytest.fixture
def fake() -> Iterator[FakePeer]:
    with FakePeer() as peer:
        yield peer


def peers(node: TestNode) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = node.call("GET", "/v1/peers")["peers"]
    return listed


def node_id(node: TestNode) -> str:
    value: str = node.status()["node_id"]
    return value


def linked(node: TestNode, other: TestNode) -> bool:
    """``node`` lists ``other`` at its URL, under its node_id, not discouraged."""
    want = node_id(other)
    return any(
        p["url"] == other.url and p["node_id"] == want and not p["discouraged"] for p in peers(node)
    )


def assert_honest_untouched(honest: Honest) -> None:
    """The honest nodes still trust each other, and a new block still reaches node 0."""
    node0, node1 = honest
    assert linked(node0, node1) and linked(node1, node0)
    mined = node1.mine(1)
    sync_blocks([node0, node1])
    assert node0.status()["best_hash"] == mined[-1]
    assert linked(node0, node1) and linked(node1, node0)


def code_of(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


def test_claiming_an_honest_node_id_opens_no_session(honest: Honest, fake: FakePeer) -> None:
    node0, node1 = honest
    fake.claim_node_id = node_id(node1)
    fake.copy_chain(node0)
    assert code_of(fake.send_hello(node0)) == (401, "no-session")
    # Without a session, whatever it sends in node 1's name is refused, blaming nobody.
    assert code_of(fake.push_block(node0, with_bad_pow(fake.next_block()))) == (401, "no-session")
    forged = forged_signature(make_tx(ALICE, "dataset", dataset_payload("in-node1-name")))
    assert code_of(fake.push_transactions(node0, [forged])) == (401, "no-session")
    assert_honest_untouched(honest)


def test_claiming_an_honest_listen_url_discourages_the_liar_only(
    honest: Honest, fake: FakePeer
) -> None:
    node0, node1 = honest
    fake.listen_url = node1.url
    assert fake.send_hello(node0).status_code == 200  # its key is its own: a session
    # ... but node 0 knows who answers at node 1's URL: the claim is a lie.
    assert code_of(fake.get(node0, "/p2p/peers")) == (401, "no-session")
    assert code_of(fake.send_hello(node0)) == (403, "peer-discouraged")
    assert_honest_untouched(honest)


def test_a_captured_hello_cannot_be_replayed(honest: Honest, fake: FakePeer) -> None:
    node0, _ = honest
    assert fake.send_hello(node0).status_code == 200
    assert fake.last_hello is not None
    hello, finish = fake.last_hello
    with httpx.Client(base_url=node0.url, timeout=30) as eavesdropper:
        assert code_of(eavesdropper.post("/p2p/hello/finish", json=finish)) == (401, "no-session")
        fresh = eavesdropper.post("/p2p/hello", json=hello)  # a new challenge...
        assert fresh.status_code == 200
        again = eavesdropper.post("/p2p/hello/finish", json=finish)  # ...the old proof
        assert code_of(again) == (401, "no-session")
    assert fake.get(node0, "/p2p/peers").status_code == 200  # the fake's own session is fine
    assert_honest_untouched(honest)


def test_another_peers_session_is_refused(honest: Honest, fake: FakePeer) -> None:
    node0, node1 = honest
    assert fake.send_hello(node0).status_code == 200
    token = fake.sessions[node0.url]
    with FakePeer() as thief:
        thief.sessions[node0.url] = token  # names itself, with the other's token
        assert code_of(thief.get(node0, "/p2p/peers")) == (401, "no-session")
        thief.sessions[node1.url] = token  # a token node 0 issued is nothing at node 1
        assert code_of(thief.get(node1, "/p2p/peers")) == (401, "no-session")
        bad = with_bad_pow(thief.next_block())
        assert code_of(thief.push_block(node0, bad)) == (401, "no-session")
    assert fake.get(node0, "/p2p/peers").status_code == 200  # nobody was blamed
    assert_honest_untouched(honest)


def test_invalid_data_in_anothers_name_is_refused_and_in_its_own_discourages_it(
    honest: Honest, fake: FakePeer
) -> None:
    node0, node1 = honest
    fake.copy_chain(node0)
    assert fake.send_hello(node0).status_code == 200
    fake.claim_node_id = node_id(node1)  # its own session, node 1's name
    assert code_of(fake.push_block(node0, with_bad_pow(fake.next_block()))) == (401, "no-session")
    fake.claim_node_id = None
    forged = forged_signature(make_tx(ALICE, "dataset", dataset_payload("own-name")))
    assert fake.push_transactions(node0, [forged]).status_code == 200
    assert code_of(fake.send_hello(node0)) == (403, "peer-discouraged")
    assert_honest_untouched(honest)


def test_a_flood_of_hellos_from_made_up_addresses_stays_bounded(
    honest: Honest, fake: FakePeer
) -> None:
    """2,000 hellos, each from a made-up address; 100 more finished with keys of their
    own. None of those addresses is believed: none is dialed into the address book,
    listed, or written to disk. (``tests/node/test_p2p_mesh.py`` sends 10,000 in-process,
    and ``test_p2p_protocol.py`` finishes 10,000.)"""
    node0, _ = honest
    made_up = [f"http://127.0.0.1:{free_port()}" for _ in range(50)]
    with httpx.Client(base_url=node0.url, timeout=30) as client:
        for n in range(2_000):
            hello = Hello(
                "regtest",
                fake.genesis_hash,
                secrets.token_hex(32),
                "flood",
                f"{made_up[n % 50]}/{n}",
                Best(fake.tip.hash, 0, 1),
                secrets.token_hex(32),
            )
            assert client.post("/p2p/hello", json=hello.to_json()).status_code == 200
    for n in range(100):
        with FakePeer() as liar:
            liar.listen_url = f"{made_up[n % 50]}/finished-{n}"
            assert liar.send_hello(node0).status_code == 200
    listed = {p["url"] for p in peers(node0)}
    assert not any(url.startswith(tuple(made_up)) for url in listed)
    with sqlite3.connect(f"file:{node0.data_dir / 'regtest.sqlite3'}?mode=ro", uri=True) as db:
        stored = [row[0] for row in db.execute("SELECT url FROM peers")]
    assert not any(url.startswith(tuple(made_up)) for url in stored)
    assert len(stored) <= len(listed) + 2
    assert_honest_untouched(honest)
