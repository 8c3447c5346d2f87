"""The block download plan: which blocks a syncing node asks which peer for, and when.

``BlockDownload`` is pure state, so every test drives it by hand with small windows,
runs and caps and checks the exact runs handed out (blocks are ``h0``, ``h1``, ...). A
block is pending, in flight with one peer, fetched (its bytes held until the chain takes
it) or done; a random machine checks that the limits hold whatever peers do and that a
download whose blocks all arrive finishes with each block received once.
"""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from node.p2p.policy import MAX_FETCH_BLOCKS, BlockDownload

UNLIMITED = 1_000


def hashes(*indices: int) -> list[str]:
    return [f"h{i}" for i in indices]


def span(start: int, stop: int) -> list[str]:
    return hashes(*range(start, stop))


def plan(
    count: int,
    *,
    window: int = UNLIMITED,
    batch: int = UNLIMITED,
    per_peer: int = UNLIMITED,
    max_buffered: int = UNLIMITED,
) -> BlockDownload:
    return BlockDownload(
        span(0, count), window=window, batch=batch, per_peer=per_peer, max_buffered=max_buffered
    )


def in_flight(download: BlockDownload, peer: str) -> int:
    """Blocks ``peer`` has in flight (what the per-peer cap counts)."""
    return download._per_peer[peer]


def fetch_all(download: BlockDownload, blocks: list[str], size: int = 1) -> None:
    for block in blocks:
        download.fetched(block, size)


def receive_all(download: BlockDownload, blocks: list[str]) -> None:
    for block in blocks:
        download.received(block)


# --- defaults --------------------------------------------------------------------------------


def test_a_request_carries_at_most_16_blocks_and_a_run_is_one_request() -> None:
    download = BlockDownload(span(0, 3))
    assert MAX_FETCH_BLOCKS == 16
    assert download.batch == MAX_FETCH_BLOCKS
    assert (download.window, download.per_peer, download.max_buffered) == (2048, 64, 64 << 20)
    assert download.slots == 4


@pytest.mark.parametrize(
    ("per_peer", "batch", "slots"),
    [(32, 16, 2), (16, 16, 1), (48, 16, 3), (47, 16, 2), (8, 16, 1), (6, 2, 3)],
)
def test_slots_are_the_whole_runs_a_peer_may_have_in_flight_and_at_least_one(
    per_peer: int, batch: int, slots: int
) -> None:
    assert plan(1, per_peer=per_peer, batch=batch).slots == slots


# --- runs ------------------------------------------------------------------------------------


def test_runs_are_handed_out_lowest_first_and_consecutive_whoever_asks() -> None:
    download = plan(10, batch=3)
    assert download.next_for("a") == span(0, 3)
    assert download.next_for("b") == span(3, 6)
    assert download.next_for("a") == span(6, 9)
    assert download.next_for("c") == hashes(9)
    assert download.next_for("c") == []
    assert [in_flight(download, peer) for peer in "abcd"] == [6, 3, 1, 0]


def test_a_run_is_cut_to_what_the_peer_may_still_have_in_flight() -> None:
    download = plan(12, batch=3, per_peer=5)
    assert download.next_for("a") == span(0, 3)
    assert download.next_for("a") == span(3, 5)
    assert in_flight(download, "a") == 5
    assert download.next_for("a") == []
    assert download.next_for("b") == span(5, 8)


def test_a_per_peer_cap_below_the_batch_makes_shorter_runs() -> None:
    download = plan(6, batch=4, per_peer=2)
    assert download.next_for("a") == span(0, 2)
    assert download.next_for("b") == span(2, 4)
    assert download.next_for("a") == []


def test_the_per_peer_cap_frees_when_blocks_are_fetched_not_only_when_done() -> None:
    download = plan(10, batch=4, per_peer=4)
    assert download.next_for("a") == span(0, 4)
    assert download.next_for("a") == []
    fetch_all(download, hashes(0, 1))
    assert in_flight(download, "a") == 2
    assert download.next_for("a") == span(4, 6)
    assert in_flight(download, "a") == 4
    assert download.remaining() == 10


def test_receiving_a_block_still_in_flight_frees_its_peer_too() -> None:
    download = plan(4, batch=2, per_peer=2)
    assert download.next_for("a") == span(0, 2)
    download.received("h0")
    assert in_flight(download, "a") == 1
    assert download.next_for("a") == hashes(2)


def test_fetching_a_block_twice_or_after_it_is_done_changes_nothing() -> None:
    download = plan(4, batch=2, per_peer=2, max_buffered=10)
    assert download.next_for("a") == span(0, 2)
    download.fetched("h0", 6)
    download.fetched("h0", 6)
    download.received("h1")
    download.fetched("h1", 100)
    download.fetched("h3", 100)
    assert in_flight(download, "a") == 0
    assert download.next_for("a") == span(2, 4)


# --- the window ------------------------------------------------------------------------------


def test_nothing_is_asked_for_beyond_the_window_past_the_lowest_block_not_done() -> None:
    download = plan(10, window=5, batch=3)
    assert download.next_for("a") == span(0, 3)
    assert download.next_for("b") == span(3, 5)
    assert download.next_for("c") == []
    fetch_all(download, span(0, 5))
    assert download.next_for("c") == []
    download.received("h0")
    assert download.next_for("c") == hashes(5)
    receive_all(download, hashes(1, 2))
    assert download.next_for("c") == span(6, 8)


def test_the_window_moves_only_when_the_lowest_block_is_done() -> None:
    download = plan(10, window=4, batch=4)
    assert download.next_for("a") == span(0, 4)
    fetch_all(download, span(0, 4))
    receive_all(download, hashes(3, 2, 1))
    assert download.remaining() == 7
    assert download.next_for("b") == []
    download.received("h0")
    assert download.next_for("b") == span(4, 8)


# --- bytes waiting for the chain -------------------------------------------------------------


def test_fetched_blocks_holding_max_buffered_bytes_stop_new_runs_until_received() -> None:
    download = plan(10, batch=2, max_buffered=100)
    assert download.next_for("a") == span(0, 2)
    download.fetched("h0", 60)
    assert download.next_for("b") == span(2, 4)
    download.fetched("h1", 40)
    assert download.next_for("b") == []
    assert download.next_for("c") == []
    download.received("h1")
    assert download.next_for("b") == span(4, 6)
    download.fetched("h2", 40)
    assert download.next_for("c") == []
    download.received("h0")
    assert download.next_for("c") == span(6, 8)


def test_a_failed_fetched_block_gives_its_bytes_back() -> None:
    download = plan(4, batch=2, max_buffered=50)
    assert download.next_for("a") == span(0, 2)
    download.fetched("h1", 50)
    assert download.next_for("b") == []
    download.failed(hashes(1))
    assert download.next_for("b") == hashes(1, 2)


# --- failures --------------------------------------------------------------------------------


def test_failed_blocks_go_back_to_the_front_lowest_first_ahead_of_untouched_ones() -> None:
    download = plan(12, batch=3)
    assert download.next_for("a") == span(0, 3)
    assert download.next_for("b") == span(3, 6)
    assert download.next_for("c") == span(6, 9)
    fetch_all(download, hashes(4, 1, 7))
    download.failed(hashes(7, 5, 1, 4, 2))
    assert [in_flight(download, peer) for peer in "abc"] == [1, 1, 2]
    assert download.next_for("d") == hashes(1, 2, 4)
    assert download.next_for("d") == hashes(5, 7, 9)
    assert download.next_for("e") == span(10, 12)
    assert download.next_for("e") == []


def test_failed_ignores_repeats_and_blocks_done_or_never_handed_out() -> None:
    download = plan(6, batch=2)
    assert download.next_for("a") == span(0, 2)
    assert download.next_for("b") == span(2, 4)
    download.fetched("h2", 1)
    download.received("h2")
    download.failed(hashes(0, 0))
    download.failed(hashes(0))
    download.failed(hashes(2, 5, 4))
    assert in_flight(download, "a") == 1
    assert in_flight(download, "b") == 1
    assert download.next_for("c") == hashes(0, 4)
    assert download.next_for("c") == hashes(5)
    assert download.next_for("c") == []
    assert download.remaining() == 5


def test_a_block_one_peer_failed_is_handed_to_another() -> None:
    download = plan(4, batch=2, per_peer=2)
    assert download.next_for("a") == span(0, 2)
    assert download.next_for("b") == span(2, 4)
    download.failed(hashes(0, 1))
    assert in_flight(download, "a") == 0
    assert download.next_for("c") == span(0, 2)
    assert in_flight(download, "c") == 2
    fetch_all(download, span(0, 4))
    receive_all(download, span(0, 4))
    assert download.finished


def test_blocks_failed_at_different_times_are_handed_out_lowest_first() -> None:
    download = plan(8, batch=2)
    assert download.next_for("a") == span(0, 2)
    assert download.next_for("b") == span(2, 4)
    assert download.next_for("c") == span(4, 6)
    fetch_all(download, span(0, 4))
    download.failed(hashes(3))
    download.failed(hashes(4, 5))
    assert download.next_for("d") == hashes(3, 4)


# --- the end ---------------------------------------------------------------------------------


def test_the_download_finishes_when_every_block_is_done() -> None:
    download = plan(3)
    assert not download.finished
    assert download.remaining() == 3
    assert download.next_for("a") == span(0, 3)
    fetch_all(download, span(0, 3))
    assert download.remaining() == 3
    assert not download.finished
    download.received("h1")
    assert download.remaining() == 2
    receive_all(download, hashes(0, 2))
    assert download.remaining() == 0
    assert download.finished
    assert download.next_for("a") == []


def test_an_empty_download_is_finished_from_the_start() -> None:
    download = BlockDownload([])
    assert download.finished
    assert download.remaining() == 0
    assert download.next_for("a") == []


def test_abandon_finishes_the_download_and_nothing_more_is_handed_out() -> None:
    download = plan(6, batch=2)
    assert download.next_for("a") == span(0, 2)
    download.abandon()
    assert download.finished
    assert download.next_for("a") == []
    assert download.next_for("b") == []
    download.failed(hashes(0, 1))
    assert download.next_for("b") == []
    assert download.remaining() == 6


# --- limits hold whatever happens ------------------------------------------------------------

PEERS = ("a", "b", "c")
PEER = st.sampled_from(PEERS)
PICK = st.integers(min_value=0, max_value=1_000)


def index_of(block_hash: str) -> int:
    return int(block_hash.removeprefix("h"))


class BlockDownloadMachine(RuleBasedStateMachine):
    """Random peers ask for runs, fetch, fail and hand blocks to the chain, in any order,
    against a model of each block's state; then, from wherever that left the download,
    every block arriving finishes it."""

    def __init__(self) -> None:
        super().__init__()
        self.download = BlockDownload([])
        self.pending: set[int] = set()
        self.in_flight: dict[int, str] = {}
        self.fetched: dict[int, int] = {}
        self.done: set[int] = set()
        self.received: Counter[int] = Counter()
        self.asked = 0

    @initialize(
        count=st.integers(0, 40),
        window=st.integers(1, 12),
        batch=st.integers(1, 5),
        per_peer=st.integers(1, 8),
        max_buffered=st.integers(1, 50),
    )
    def start(self, count: int, window: int, batch: int, per_peer: int, max_buffered: int) -> None:
        self.download = plan(
            count, window=window, batch=batch, per_peer=per_peer, max_buffered=max_buffered
        )
        self.pending = set(range(count))

    @property
    def count(self) -> int:
        return len(self.download.needed)

    @property
    def low(self) -> int:
        return min(set(range(self.count)) - self.done, default=self.count)

    def handed_out(self) -> set[int]:
        return set(self.in_flight) | set(self.fetched)

    def held(self, peer: str) -> int:
        return sum(1 for owner in self.in_flight.values() if owner == peer)

    @rule(peer=PEER)
    def ask(self, peer: str) -> None:
        self.asked += 1
        self.hand_out(peer)

    def hand_out(self, peer: str) -> list[int]:
        room = self.download.per_peer - self.held(peer)
        buffered = sum(self.fetched.values())
        run = [index_of(block) for block in self.download.next_for(peer)]
        assert len(run) <= self.download.batch
        assert len(run) <= room
        assert not run or buffered < self.download.max_buffered
        assert len(set(run)) == len(run)
        for index in run:
            assert index in self.pending
            assert index < self.low + self.download.window
        if not run and room > 0 and buffered < self.download.max_buffered:
            assert all(index >= self.low + self.download.window for index in self.pending)
        for index in run:
            self.pending.remove(index)
            self.in_flight[index] = peer
        return run

    @precondition(lambda self: bool(self.in_flight))
    @rule(pick=PICK, size=st.integers(0, 20))
    def fetch(self, pick: int, size: int) -> None:
        index = sorted(self.in_flight)[pick % len(self.in_flight)]
        self.download.fetched(f"h{index}", size)
        del self.in_flight[index]
        self.fetched[index] = size

    @precondition(lambda self: bool(self.pending) or bool(self.fetched) or bool(self.done))
    @rule(pick=PICK, size=st.integers(0, 20))
    def late_fetch(self, pick: int, size: int) -> None:
        idle = sorted(self.pending | set(self.fetched) | self.done)
        self.download.fetched(f"h{idle[pick % len(idle)]}", size)

    @precondition(lambda self: bool(self.in_flight) or bool(self.fetched))
    @rule(pick=PICK)
    def receive(self, pick: int) -> None:
        handed_out = sorted(self.handed_out())
        self.take(handed_out[pick % len(handed_out)])

    def take(self, index: int) -> None:
        self.download.received(f"h{index}")
        self.in_flight.pop(index, None)
        self.fetched.pop(index, None)
        self.done.add(index)
        self.received[index] += 1

    @precondition(lambda self: self.count > 0)
    @rule(picks=st.lists(PICK, max_size=6))
    def fail(self, picks: list[int]) -> None:
        indices = [pick % self.count for pick in picks]
        self.download.failed(f"h{index}" for index in indices)
        for index in indices:
            if index in self.in_flight or index in self.fetched:
                self.in_flight.pop(index, None)
                self.fetched.pop(index, None)
                self.pending.add(index)

    @precondition(lambda self: self.asked >= 3)
    @rule()
    def every_block_arrives(self) -> None:
        for _ in range(self.count + 1):
            for index in sorted(self.handed_out()):
                self.take(index)
            if not any([self.hand_out(peer) for peer in PEERS]) and not self.in_flight:
                break
        assert self.download.finished
        assert self.download.remaining() == 0
        assert self.received == Counter(range(self.count))

    @invariant()
    def every_block_is_in_exactly_one_state(self) -> None:
        download = self.download
        pending = list(download._pending)
        assert len(pending) == len(set(pending))
        assert set(pending) == self.pending
        assert download._in_flight == self.in_flight
        assert download._fetched == self.fetched
        assert download._done == self.done
        states = [set(pending), set(self.in_flight), set(self.fetched), self.done]
        assert sum(map(len, states)) == self.count
        assert set().union(*states) == set(range(self.count))

    @invariant()
    def peers_and_bytes_are_counted(self) -> None:
        for peer in PEERS:
            assert in_flight(self.download, peer) == self.held(peer) <= self.download.per_peer
        assert self.download._buffered == sum(self.fetched.values())
        assert self.download.remaining() == self.count - len(self.done)
        assert self.download.finished == (len(self.done) == self.count)


TestBlockDownloadMachine = BlockDownloadMachine.TestCase
TestBlockDownloadMachine.settings = settings(
    max_examples=100,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
