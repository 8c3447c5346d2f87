"""Invalid data from a peer is rejected, its sender discouraged, and the honest chain kept.

A scripted fake peer (``fakepeer.FakePeer``) sends one kind of bad data per test: a block
with bad proof of work, a bad Merkle root, an invalid transaction or wrong bits; during a
sync the node starts against it, a run of headers that does not connect or a block body
that is not the one its header commits to; a badly signed transaction, an oversized body,
a hello of another network. Each time the node must refuse it, show the sender as
discouraged with a reason in ``/v1/peers``, drop its session (its further ``/p2p/*``
requests get 401) and refuse its next hello (403), and keep its chain and its honest
peer: same tip, the honest node not discouraged and still syncing. A hello that is
refused before the sender proved its node key blames nobody.

What is not misbehaviour (design.md §5) is not punished: a too-new block is held back
and accepted later, a block on a side branch is stored, a duplicate transaction or one
whose reference the node has not seen yet is only refused.

Each test uses a fresh fake peer (a new node key and a new port) because discouragement
is per node. The two honest nodes are shared by the module: starting them is the slow part.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from consensus.block import Block
from consensus.genesis import genesis_header
from consensus.params import DEVNET, REGTEST
from tests.consensus.conftest import ALICE, dataset_payload, make_tx
from tests.functional.conftest import NodeFactory
from tests.functional.fakepeer import (
    FakePeer,
    build_block,
    forged_signature,
    harder_bits,
    headers_hex,
    oversized_body,
    too_new_timestamp,
    with_bad_merkle_root,
    with_bad_pow,
    with_bits,
)
from tests.functional.framework import TestNode, sync_blocks, wait_until

Honest = tuple[TestNode, TestNode]


@pytest.fixture(scope="module")
def honest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Honest]:
    """Two connected regtest nodes with a short chain; node 0 is the one attacked."""
    root: Path = tmp_path_factory.mktemp("p2p_invalid")
    node0 = TestNode(0, root)
    node1 = TestNode(1, root, args=["--peer", node0.url])
    try:
        try:
            node0.start()
            node1.start()
            wait_until(
                lambda: node0.status()["peers"] >= 1 and node1.status()["peers"] >= 1,
                timeout=30,
                what="the honest nodes to connect",
            )
            node0.mine(3)
            sync_blocks([node0, node1])
        except BaseException:
            for node in (node0, node1):
                print(f"\n----- log of {node} -----\n{node.log_tail(60)}")
            raise
        yield node0, node1
    finally:
        node0.close()
        node1.close()


@pytest.fixture(autouse=True)
def _logs_on_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    """The module's nodes outlive a test: dump their logs with the test that failed."""
    yield
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed and "honest" in request.fixturenames:
        for node in request.getfixturevalue("honest"):
            print(f"\n----- log of {node} -----\n{node.log_tail(60)}")


@pytest.fixture
def fake() -> Iterator[FakePeer]:
    with FakePeer() as peer:
        yield peer


# --- helpers ---------------------------------------------------------------------------


def peer_view(node: TestNode, url: str) -> dict[str, Any] | None:
    peers: list[dict[str, Any]] = node.call("GET", "/v1/peers")["peers"]
    return next((p for p in peers if p["url"] == url), None)


def is_discouraged(node: TestNode, url: str) -> bool:
    view = peer_view(node, url)
    return view is not None and view["discouraged"] is True


def tip(node: TestNode) -> tuple[int, str]:
    status = node.status()
    return status["height"], status["best_hash"]


def assert_discouraged(node: TestNode, fake: FakePeer, reason: str) -> None:
    """``fake`` shows as discouraged for ``reason``, and the node refuses it from now on."""
    wait_until(
        lambda: is_discouraged(node, fake.url), timeout=30, what=f"{node} to discourage {fake}"
    )
    view = peer_view(node, fake.url)
    assert view is not None
    assert reason in (view["reason"] or ""), view
    assert view["node_id"] == fake.node_id, view
    refused = {
        "peers": fake.get(node, "/p2p/peers"),
        "block": fake.push_block(node, fake.tip),
        "headers": fake.post(node, "/p2p/headers", json={"locator": [], "limit": 10}),
        "transactions": fake.push_transactions(node, []),
    }
    for what, response in refused.items():
        assert response.status_code == 401, f"{what}: {response.status_code} {response.text}"
    hello = fake.send_hello(node)
    assert hello.status_code == 403, hello.text
    assert hello.json()["error"]["code"] == "peer-discouraged"


def assert_honest_untouched(honest: Honest, before: tuple[int, str]) -> None:
    """Node 0 kept its tip, and it and its honest peer still sync and trust each other."""
    node0, node1 = honest
    assert tip(node0) == before, f"{node0} changed its tip"
    mined = node1.mine(1)
    sync_blocks([node0, node1])
    assert node0.status()["best_hash"] == mined[-1]
    assert not is_discouraged(node0, node1.url)
    assert not is_discouraged(node1, node0.url)


def pushed(fake: FakePeer, node: TestNode, block: Block) -> dict[str, Any]:
    response = fake.push_block(node, block)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def connected_fake(fake: FakePeer, node: TestNode) -> None:
    """The fake holds the node's chain and has said hello (an inbound peer of the node,
    whose listen URL the node verified by dialing it back)."""
    fake.copy_chain(node)
    response = fake.send_hello(node)
    assert response.status_code == 200, response.text
    wait_until(
        lambda: (peer_view(node, fake.url) or {}).get("node_id") == fake.node_id,
        timeout=30,
        what=f"{node} to verify {fake}'s listen url",
    )
    assert not is_discouraged(node, fake.url)


# --- blocks ----------------------------------------------------------------------------


def test_block_with_bad_pow_is_rejected_and_sender_discouraged(
    honest: Honest, fake: FakePeer
) -> None:
    node0, _ = honest
    connected_fake(fake, node0)
    before = tip(node0)
    answer = pushed(fake, node0, with_bad_pow(fake.next_block()))
    assert (answer["status"], answer.get("code")) == ("rejected", "high-hash")
    assert_discouraged(node0, fake, "high-hash")
    assert_honest_untouched(honest, before)


def test_block_with_bad_merkle_root_is_rejected_and_sender_discouraged(
    honest: Honest, fake: FakePeer
) -> None:
    node0, _ = honest
    connected_fake(fake, node0)
    before = tip(node0)
    tx = make_tx(ALICE, "dataset", dataset_payload("merkle"))
    answer = pushed(fake, node0, with_bad_merkle_root(fake.next_block([tx])))
    assert (answer["status"], answer.get("code")) == ("rejected", "bad-merkle-root")
    assert_discouraged(node0, fake, "bad-merkle-root")
    assert_honest_untouched(honest, before)


def test_block_with_badly_signed_transaction_is_rejected(honest: Honest, fake: FakePeer) -> None:
    node0, _ = honest
    connected_fake(fake, node0)
    before = tip(node0)
    forged = forged_signature(make_tx(ALICE, "dataset", dataset_payload("forged")))
    answer = pushed(fake, node0, fake.next_block([forged]))
    assert (answer["status"], answer.get("code")) == ("rejected", "bad-signature")
    assert_discouraged(node0, fake, "bad-signature")
    assert_honest_untouched(honest, before)


def test_block_with_forged_signature_of_a_pending_transaction_is_rejected(
    honest: Honest, fake: FakePeer
) -> None:
    """The signature is outside the txid: a forged copy of a pending transaction has the
    pending one's txid, but it is still not signed by its signer."""
    node0, node1 = honest
    tx = make_tx(ALICE, "dataset", dataset_payload("pending-then-forged"))
    node0.submit(tx)
    wait_until(
        lambda: (
            node1.call("GET", f"/v1/transactions/{tx.txid}", expect=(200, 404)).get("status")
            == "pending"
        ),
        timeout=30,
        what="the transaction to reach node 1",
    )
    connected_fake(fake, node0)
    before = tip(node0)
    answer = pushed(fake, node0, fake.next_block([forged_signature(tx)]))
    assert (answer["status"], answer.get("code")) == ("rejected", "bad-signature")
    assert_discouraged(node0, fake, "bad-signature")
    assert_honest_untouched(honest, before)
    assert node0.tx(tx.txid)["signature"] == tx.signature  # the genuine one was mined


def test_block_with_wrong_bits_is_rejected_and_sender_discouraged(
    honest: Honest, fake: FakePeer
) -> None:
    node0, _ = honest
    connected_fake(fake, node0)
    before = tip(node0)
    block = with_bits(fake.next_block(), harder_bits(REGTEST.pow_limit_bits))
    answer = pushed(fake, node0, block)
    assert (answer["status"], answer.get("code")) == ("rejected", "bad-diffbits")
    assert_discouraged(node0, fake, "bad-diffbits")
    assert_honest_untouched(honest, before)


# --- headers ---------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["gap", "unknown-parent"])
def test_non_connecting_headers_during_sync_discourage_the_peer(
    honest: Honest, fake: FakePeer, fault: str
) -> None:
    """The node syncs from the fake (it claims more work) and gets headers that are not a
    chain (``gap``: one is missing) or do not start on a block it knows."""
    node0, _ = honest
    fake.copy_chain(node0)
    before = tip(node0)
    new = fake.extend(4)
    served = [new[0], *new[2:]] if fault == "gap" else new[1:]
    fake.headers_answer = headers_hex(served)

    node0.call("POST", "/v1/admin/peers", json={"url": fake.url})
    assert_discouraged(node0, fake, "non-connecting headers")
    assert fake.received("POST", "/p2p/headers"), "the node never asked the fake for headers"
    assert not fake.fetched(), "the node fetched blocks after bad headers"
    assert_honest_untouched(honest, before)


def test_invalid_block_served_during_sync_discourages_the_peer(
    honest: Honest, fake: FakePeer
) -> None:
    """A valid header whose body, fetched during the sync, is not the one it commits to."""
    node0, _ = honest
    fake.copy_chain(node0)
    before = tip(node0)
    valid = fake.next_block([make_tx(ALICE, "dataset", dataset_payload("served"))])
    fake.add(Block(valid.header, ()))  # the same header (and hash) with the body swapped

    assert fake.send_hello(node0).status_code == 200  # claims more work: the node syncs
    assert_discouraged(node0, fake, "bad-merkle-root")
    assert fake.fetched() == [valid.hash]
    assert_honest_untouched(honest, before)


def test_a_run_with_a_block_not_asked_for_discourages_the_peer(
    honest: Honest, fake: FakePeer
) -> None:
    """Blocks are fetched in runs; a peer that answers a run out of order is caught."""
    node0, _ = honest
    fake.copy_chain(node0)
    before = tip(node0)
    new = fake.extend(3)
    answer = fake.blocks_run
    fake.blocks_run = lambda hashes: answer(list(hashes)[::-1])  # type: ignore[method-assign]

    assert fake.send_hello(node0).status_code == 200  # claims more work: the node syncs
    assert_discouraged(node0, fake, f"asked for block {new[0].hash}, got {new[-1].hash}")
    assert_honest_untouched(honest, before)


# --- messages --------------------------------------------------------------------------


def test_badly_signed_transaction_discourages_the_sender(honest: Honest, fake: FakePeer) -> None:
    node0, _ = honest
    connected_fake(fake, node0)
    before = tip(node0)
    forged = forged_signature(make_tx(ALICE, "dataset", dataset_payload("pushed-forged")))
    response = fake.push_transactions(node0, [forged])
    assert response.status_code == 200, response.text
    [result] = response.json()["results"]
    assert (result["txid"], result["status"], result["code"]) == (
        forged.txid,
        "rejected",
        "bad-signature",
    )
    assert_discouraged(node0, fake, "bad-signature")
    assert node0.call("GET", f"/v1/transactions/{forged.txid}", expect=404)
    assert_honest_untouched(honest, before)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_oversized_body_discourages_the_sender(
    honest: Honest, fake: FakePeer, chunked: bool
) -> None:
    node0, _ = honest
    connected_fake(fake, node0)
    before = tip(node0)
    try:
        response = fake.post(node0, "/p2p/blocks", content=oversized_body(), chunked=chunked)
    except httpx.HTTPError:
        pass  # the node may close the connection before reading all of it
    else:
        assert response.status_code == 413, response.text
        assert response.json()["error"]["code"] == "body-too-large"
    assert_discouraged(node0, fake, "oversized")
    assert_honest_untouched(honest, before)


def test_hello_with_wrong_genesis_is_refused_blaming_nobody(honest: Honest, fake: FakePeer) -> None:
    """Refused before the sender proved its key, so nobody is blamed: the same key with
    the right genesis is welcome at once."""
    node0, _ = honest
    before = tip(node0)
    fake.genesis_hash = "00" * 32
    response = fake.send_hello(node0)
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "hello-refused"
    assert "wrong genesis" in response.json()["error"]["message"]
    fake.genesis_hash = genesis_header(REGTEST).hash
    connected_fake(fake, node0)
    assert_honest_untouched(honest, before)


def test_peer_of_another_network_is_discouraged_when_dialled(
    honest: Honest, fake: FakePeer
) -> None:
    node0, _ = honest
    before = tip(node0)
    fake.network, fake.genesis_hash = DEVNET.network, genesis_header(DEVNET).hash
    answer = node0.call("POST", "/v1/admin/peers", json={"url": fake.url})
    assert answer["connected"] is False
    assert "wrong network" in (answer["reason"] or "")
    assert_discouraged(node0, fake, "wrong network")
    assert_honest_untouched(honest, before)


# --- not misbehaviour --------------------------------------------------------------------


def test_side_branch_block_is_stored_not_relayed_not_punished(
    honest: Honest, fake: FakePeer
) -> None:
    """A valid block on a fork with no more work than the tip is kept, in case its branch
    overtakes later; it is nobody's fault."""
    node0, node1 = honest
    connected_fake(fake, node0)
    before = tip(node0)
    side = build_block(fake.chain[-2].header)  # a sibling of the tip: equal work
    assert pushed(fake, node0, side)["status"] == "accepted"
    tips = {t["hash"]: t for t in node0.call("GET", "/v1/chain/tips")["tips"]}
    assert tips[side.hash]["status"] == "valid-fork"
    assert tip(node0) == before  # on equal work the node keeps the chain it had
    assert not is_discouraged(node0, fake.url)
    assert fake.send_hello(node0).status_code == 200
    assert_honest_untouched(honest, before)
    node1.call("GET", f"/v1/blocks/{side.hash}", expect=404)  # not relayed


def test_ledger_conflicts_in_transactions_are_not_misbehaviour(
    honest: Honest, fake: FakePeer
) -> None:
    """A duplicate, or a reference the node has not seen yet, can be an honest race
    between mempools: rejected (or reported), never punished."""
    node0, node1 = honest
    connected_fake(fake, node0)
    tx = make_tx(ALICE, "dataset", dataset_payload("pushed-twice"))
    orphan = make_tx(ALICE, "dataset", dataset_payload("orphan", derived_from=["ab" * 32]))
    first = fake.push_transactions(node0, [tx]).json()["results"]
    again = fake.push_transactions(node0, [tx, orphan]).json()["results"]
    assert [r["status"] for r in first] == ["accepted"]
    assert [r["status"] for r in again] == ["duplicate", "rejected"]
    assert not is_discouraged(node0, fake.url)
    assert fake.send_hello(node0).status_code == 200
    # The good one was relayed (not to its sender) and gets mined.
    wait_until(
        lambda: (
            node1.call("GET", f"/v1/transactions/{tx.txid}", expect=(200, 404)).get("status")
            == "pending"
        ),
        timeout=30,
        what="the pushed transaction to reach node 1",
    )
    assert tx.txid not in fake.pushed_txids()
    node1.mine(1)
    sync_blocks([node0, node1])
    assert node0.tx(tx.txid)["status"] == "confirmed"


def test_too_new_block_is_held_back_not_punished(make_node: NodeFactory, fake: FakePeer) -> None:
    node = make_node()
    node.mine(2)
    connected_fake(fake, node)
    before = tip(node)
    early = fake.next_block(timestamp=too_new_timestamp())
    answer = pushed(fake, node, early)
    assert answer["status"] == "too-new", answer
    assert tip(node) == before
    assert not is_discouraged(node, fake.url)
    assert fake.send_hello(node).status_code == 200
    assert fake.push_block(node, fake.tip).json()["status"] == "duplicate"
    # Held back, not forgotten: once the clock allows it, the block is accepted.
    wait_until(
        lambda: node.status()["best_hash"] == early.hash,
        timeout=60,
        what="the held-back block to be accepted",
    )
    assert not is_discouraged(node, fake.url)
