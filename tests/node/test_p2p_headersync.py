"""The headers-first sync's decisions, without I/O (``node.p2p.headersync``)."""

from __future__ import annotations

from consensus.block import Header
from consensus.chain import BlockTree, Status
from consensus.errors import BlockNotFound, BlockTooNew, InvalidBlock
from consensus.genesis import genesis_header
from consensus.params import REGTEST
from node.p2p.headersync import (
    MAX_HEADERS,
    download_peers,
    header_fault,
    missing_bodies,
    next_locator,
    run_arrived,
    sync_target,
)
from node.p2p.peers import Peer
from node.p2p.policy import BlockDownload
from tests.node.conftest import solved_header


def chain(length: int) -> list[Header]:
    headers = [genesis_header(REGTEST)]
    for _ in range(length):
        headers.append(solved_header(headers[-1]))
    return headers


def test_only_a_full_run_asks_for_more_from_its_last_header() -> None:
    assert next_locator(MAX_HEADERS, "ab" * 32) == ["ab" * 32]
    assert next_locator(MAX_HEADERS - 1, "ab" * 32) is None
    assert next_locator(MAX_HEADERS, None) is None
    assert next_locator(0, None) is None


def test_a_run_that_does_not_connect_or_holds_an_invalid_header_is_misbehaviour() -> None:
    run = chain(3)[1:]
    assert header_fault(run, 0, BlockNotFound("x")) == "non-connecting headers: unknown parent"
    invalid = InvalidBlock("high-hash", "no")
    assert header_fault(run, 1, invalid) == f"invalid header {run[1].hash}: high-hash"
    assert header_fault(run, 1, BlockTooNew(2, 1)) is None
    assert header_fault(run, 3, None) is None


def test_the_target_is_the_announced_best_when_it_has_more_work() -> None:
    headers = chain(3)
    tree = BlockTree(headers[0], 1)
    low, high = (tree.add_header(h, 1) for h in headers[1:3])
    assert sync_target(low, high) is high
    assert sync_target(high, low) is high
    assert sync_target(None, low) is low
    assert sync_target(low, None) is low
    assert sync_target(None, None) is None


def test_bodies_are_fetched_only_for_a_chain_with_more_work() -> None:
    headers = chain(3)
    tree = BlockTree(headers[0], 1)
    entries = [tree.add_header(h, 1) for h in headers[1:]]
    tip = tree.get(headers[0].hash)
    assert tip is not None
    assert missing_bodies(entries[-1], tip, entries) == [e.hash for e in entries]
    entries[0].status = Status.VALID
    assert missing_bodies(entries[-1], tip, entries) == [e.hash for e in entries[1:]]
    assert missing_bodies(tip, entries[-1], []) == []


def test_blocks_are_downloaded_from_peers_at_least_as_high_as_the_first() -> None:
    first, higher, lower, unknown = (Peer(f"http://{n}.test") for n in "abcd")
    first.height, higher.height, lower.height = 10, 12, 9
    assert download_peers(first, [lower, first, higher, unknown]) == [first, higher]


def test_what_a_run_left_out_goes_back_for_another_peer() -> None:
    plan = BlockDownload([f"{n:064x}" for n in range(4)])
    asked = plan.next_for("a")
    run_arrived(plan, asked, [(asked[0], 100), (asked[1], 50)])
    assert plan.next_for("b") == asked[2:]
