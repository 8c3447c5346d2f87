"""The peer table and the transaction punishment policy, driven with an explicit clock.

The table decides whom to dial, whom to accept, when to retry, when to forget an address
and whom to refuse for a while; ``punishes_tx`` decides which rejected transactions prove
that their sender sent bad data. Every decision here takes ``now`` as an argument, so the
tests pin down exact instants (back-off deadlines, the end of a cool-down) without sleeping.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import consensus.ledger
import consensus.tx
from node.config import Settings
from node.p2p.peers import (
    DISCOURAGE_MS,
    FORGET_AFTER_FAILURES,
    MAX_ADDRESSES,
    MAX_BACKOFF_MS,
    Direction,
    KnownSet,
    Peer,
    PeerTable,
)
from node.p2p.policy import punishes_tx

SELF = "http://127.0.0.1:8000"
NOW = 1_700_000_000_000
OUT = Direction.OUTBOUND
IN = Direction.INBOUND


def addr(n: int) -> str:
    return f"http://peer-{n}.test:8000"


def table(max_outbound: int = 8, max_inbound: int = 32) -> PeerTable:
    return PeerTable(self_url=SELF, max_outbound=max_outbound, max_inbound=max_inbound)


def learned(peers: PeerTable, url: str, source: str = "gossip") -> Peer:
    peer = peers.learn(url, source=source)
    assert peer is not None
    return peer


def dial_all(peers: PeerTable, now: int) -> list[str]:
    dialed = peers.to_dial(now)
    for peer in dialed:
        peers.connected_ok(peer, now, direction=OUT)
    return [peer.url for peer in dialed]


def inbound(peers: PeerTable, url: str, now: int) -> Peer | None:
    peer = peers.accept_inbound(url, now)
    if peer is not None:
        peers.connected_ok(peer, now, direction=IN)
    return peer


def fail_times(peers: PeerTable, peer: Peer, times: int, now: int) -> list[bool]:
    return [peers.failed(peer, now) for _ in range(times)]


# --- learning addresses --------------------------------------------------------------------


def test_default_limits_are_8_outbound_and_32_inbound() -> None:
    assert Settings.model_fields["max_outbound"].default == 8
    assert Settings.model_fields["max_inbound"].default == 32


def test_learn_remembers_an_address_once_without_its_trailing_slash() -> None:
    peers = table()
    first = learned(peers, addr(1) + "/", source="seed")
    again = learned(peers, addr(1), source="gossip")
    assert again is first
    assert first.url == addr(1)
    assert first.source == "seed"
    assert len(peers) == 1
    assert addr(1) in peers
    assert peers.get(addr(1)) is first
    assert peers.all() == [first]


def test_a_new_address_starts_unconnected_and_ready_to_dial() -> None:
    peer = learned(table(), addr(1))
    assert not peer.connected
    assert peer.failures == 0
    assert peer.next_try == 0
    assert not peer.discouraged(NOW)
    assert peer.last_seen is None
    assert peer.reason is None


@pytest.mark.parametrize(
    "url",
    [
        SELF,
        SELF + "/",
        "ftp://peer.test:8000",
        "peer.test:8000",
        "ws://peer.test:8000",
        "",
        "/",
        "javascript:alert(1)",
    ],
)
def test_learn_refuses_our_own_url_and_non_http_addresses(url: str) -> None:
    peers = table()
    assert peers.learn(url, source="gossip") is None
    assert len(peers) == 0
    assert peers.to_dial(NOW) == []


def test_https_addresses_are_learned() -> None:
    peers = table()
    assert learned(peers, "https://peer.test").url == "https://peer.test"


@pytest.mark.parametrize(
    ("source", "direction"),
    [("inbound", IN), ("seed", OUT), ("stored", OUT), (addr(9), OUT)],
)
def test_learn_sets_the_direction_from_where_the_address_came_from(
    source: str, direction: Direction
) -> None:
    peer = learned(table(), addr(1), source=source)
    assert peer.direction is direction
    assert peer.source == source


def test_the_address_book_is_bounded_but_known_addresses_are_still_found() -> None:
    peers = table()
    for n in range(MAX_ADDRESSES):
        learned(peers, addr(n))
    assert len(peers) == MAX_ADDRESSES
    assert peers.learn(addr(MAX_ADDRESSES), source="gossip") is None
    assert len(peers) == MAX_ADDRESSES
    assert addr(MAX_ADDRESSES) not in peers
    assert peers.learn(addr(7), source="gossip") is peers.get(addr(7))


def test_a_full_address_book_still_accepts_an_inbound_peer_with_a_free_slot() -> None:
    peers = table()
    for n in range(MAX_ADDRESSES):
        learned(peers, addr(n))
    assert peers.count(IN) == 0
    assert inbound(peers, "http://newcomer.test:8000", NOW) is not None


def test_a_full_address_book_still_takes_a_seed_the_user_names() -> None:
    peers = table()
    for n in range(MAX_ADDRESSES):
        learned(peers, addr(n))
    seed = peers.learn("http://seed.test:8000", source="seed")
    assert seed is not None
    assert seed.url in [p.url for p in peers.to_dial(NOW)]


def test_a_full_address_book_makes_room_by_forgetting_the_least_promising_address() -> None:
    peers = table()
    for n in range(MAX_ADDRESSES):
        learned(peers, addr(n))
    peers.connected_ok(learned(peers, addr(0)), NOW, direction=OUT)
    peers.discourage(learned(peers, addr(1)), "test", NOW)
    for n in (0, 1, 2):  # the connected, the discouraged and an ordinary one fail a lot
        for _ in range(5):
            peers.failed(learned(peers, addr(n)), NOW)
    peers.connected_ok(learned(peers, addr(0)), NOW, direction=OUT)

    assert peers.learn("http://seed.test:8000", source="seed") is not None
    assert len(peers) == MAX_ADDRESSES
    assert addr(2) not in peers
    assert addr(0) in peers and addr(1) in peers

    assert inbound(peers, "http://newcomer.test:8000", NOW) is not None
    assert len(peers) == MAX_ADDRESSES
    assert "http://seed.test:8000" in peers


def test_forget_removes_an_address_and_it_can_be_learned_afresh() -> None:
    peers = table()
    peer = learned(peers, addr(1))
    fail_times(peers, peer, 3, NOW)
    peers.forget(addr(1))
    assert addr(1) not in peers
    assert peers.get(addr(1)) is None
    peers.forget(addr(1))
    again = learned(peers, addr(1))
    assert again is not peer
    assert again.failures == 0
    assert again.next_try == 0


# --- outbound connections --------------------------------------------------------------------


def test_to_dial_offers_only_as_many_addresses_as_free_outbound_slots() -> None:
    peers = table(max_outbound=8)
    for n in range(20):
        learned(peers, addr(n))
    assert len(peers.to_dial(NOW)) == 8
    for peer in peers.to_dial(NOW)[:3]:
        peers.connected_ok(peer, NOW, direction=OUT)
    assert peers.count(OUT) == 3
    assert peers.free_outbound() == 5
    offered = peers.to_dial(NOW)
    assert len(offered) == 5
    assert not any(peer.connected for peer in offered)


def test_no_dialing_once_the_outbound_slots_are_full() -> None:
    peers = table(max_outbound=8)
    for n in range(20):
        learned(peers, addr(n))
    assert len(dial_all(peers, NOW)) == 8
    assert peers.count(OUT) == 8
    assert peers.free_outbound() == 0
    assert peers.to_dial(NOW) == []
    assert peers.to_dial(NOW + 10 * DISCOURAGE_MS) == []
    peers.max_outbound = 5  # lowered below the connected count: still none free
    assert peers.free_outbound() == 0


def test_no_outbound_slots_means_no_dialing() -> None:
    peers = table(max_outbound=0)
    learned(peers, addr(1), source="seed")
    assert peers.free_outbound() == 0
    assert peers.to_dial(NOW) == []


def test_to_dial_prefers_seeds_then_the_fewest_failures() -> None:
    peers = table(max_outbound=8)
    flaky = learned(peers, addr(1))
    steady = learned(peers, addr(2))
    flaky_seed = learned(peers, addr(3), source="seed")
    seed = learned(peers, addr(4), source="seed")
    fail_times(peers, flaky, 3, NOW)
    fail_times(peers, steady, 1, NOW)
    fail_times(peers, flaky_seed, 2, NOW)
    later = NOW + MAX_BACKOFF_MS
    assert [p.url for p in peers.to_dial(later)] == [addr(4), addr(3), addr(2), addr(1)]
    peers.max_outbound = 2
    assert peers.to_dial(later) == [seed, flaky_seed]


def test_inbound_connections_do_not_use_outbound_slots() -> None:
    peers = table(max_outbound=2, max_inbound=4)
    for n in range(4):
        assert inbound(peers, addr(100 + n), NOW) is not None
    for n in range(5):
        learned(peers, addr(n))
    assert peers.count(IN) == 4
    assert len(dial_all(peers, NOW)) == 2
    assert peers.count(OUT) == 2
    assert len(peers.connected()) == 6


def test_connected_ok_records_the_contact_and_clears_the_back_off() -> None:
    peers = table()
    peer = learned(peers, addr(1))
    fail_times(peers, peer, 4, NOW)
    peers.connected_ok(peer, NOW + 1, direction=OUT)
    assert peer.connected
    assert peer.direction is OUT
    assert peer.failures == 0
    assert peer.next_try == 0
    assert peer.last_seen == NOW + 1
    assert peers.connected() == [peer]


def test_connected_ok_keeps_the_direction_of_a_live_connection() -> None:
    peers = table()
    peer = learned(peers, addr(1))
    peers.connected_ok(peer, NOW, direction=OUT)
    peers.connected_ok(peer, NOW + 5, direction=IN)
    assert peer.direction is OUT
    assert peer.last_seen == NOW + 5
    assert (peers.count(OUT), peers.count(IN)) == (1, 0)


def test_connected_peers_are_not_dialed_again() -> None:
    peers = table()
    for n in range(3):
        learned(peers, addr(n))
    first = dial_all(peers, NOW)
    assert sorted(first) == [addr(0), addr(1), addr(2)]
    assert peers.to_dial(NOW) == []


# --- inbound connections ---------------------------------------------------------------------


def test_inbound_peers_are_accepted_until_the_inbound_slots_are_full() -> None:
    peers = table(max_outbound=8, max_inbound=32)
    for n in range(32):
        peer = inbound(peers, addr(n), NOW)
        assert peer is not None
        assert peer.direction is IN
    assert peers.count(IN) == 32
    assert inbound(peers, addr(32), NOW) is None
    assert peers.count(IN) == 32
    assert inbound(peers, addr(5), NOW + 1) is peers.get(addr(5))
    assert peers.count(IN) == 32


def test_an_inbound_slot_is_freed_when_the_peer_fails_or_is_discouraged() -> None:
    peers = table(max_inbound=2)
    first = inbound(peers, addr(1), NOW)
    second = inbound(peers, addr(2), NOW)
    assert first is not None and second is not None
    assert inbound(peers, addr(3), NOW) is None
    peers.failed(first, NOW)
    assert inbound(peers, addr(3), NOW) is not None
    assert inbound(peers, addr(4), NOW) is None
    peers.discourage(second, "bad-signature", NOW)
    assert inbound(peers, addr(4), NOW) is not None
    assert peers.count(IN) == 2


def test_a_known_address_that_connects_to_us_counts_as_inbound() -> None:
    peers = table()
    peer = learned(peers, addr(1), source="seed")
    assert peer.direction is OUT
    assert peers.accept_inbound(addr(1), NOW) is peer
    assert peer.direction is IN
    peers.connected_ok(peer, NOW, direction=IN)
    assert (peers.count(OUT), peers.count(IN)) == (0, 1)
    assert peer.source == "seed"


def test_an_outbound_peer_that_also_connects_to_us_keeps_its_single_slot() -> None:
    peers = table(max_inbound=1)
    peer = learned(peers, addr(1))
    peers.connected_ok(peer, NOW, direction=OUT)
    assert inbound(peers, addr(1), NOW + 1) is peer
    assert peer.direction is OUT
    assert (peers.count(OUT), peers.count(IN)) == (1, 0)
    assert inbound(peers, addr(2), NOW + 1) is not None


def test_no_inbound_slots_refuses_everyone() -> None:
    peers = table(max_inbound=0)
    assert inbound(peers, addr(1), NOW) is None
    assert peers.connected() == []


@pytest.mark.parametrize("url", [SELF, "ftp://peer.test", "peer.test:8000"])
def test_an_inbound_handshake_from_an_unusable_url_is_refused(url: str) -> None:
    peers = table()
    assert peers.accept_inbound(url, NOW) is None
    assert len(peers) == 0


def test_an_inbound_url_with_a_trailing_slash_is_the_same_peer() -> None:
    peers = table()
    peer = learned(peers, addr(1))
    assert inbound(peers, addr(1) + "/", NOW) is peer
    assert len(peers) == 1


# --- failures, back-off and forgetting ------------------------------------------------------


def test_a_failure_disconnects_and_backs_off_exponentially_up_to_a_cap() -> None:
    peers = table()
    peer = learned(peers, addr(1), source="seed")
    peers.connected_ok(peer, NOW, direction=OUT)
    delays = []
    for _ in range(12):
        peers.failed(peer, NOW)
        assert not peer.connected
        delays.append(peer.next_try - NOW)
    assert delays == [
        2_000,
        4_000,
        8_000,
        16_000,
        32_000,
        64_000,
        128_000,
        256_000,
        300_000,
        300_000,
        300_000,
        300_000,
    ]
    assert MAX_BACKOFF_MS == 300_000


def test_a_failed_peer_is_redialed_exactly_when_its_back_off_ends() -> None:
    peers = table()
    peer = learned(peers, addr(1))
    peers.connected_ok(peer, NOW, direction=OUT)
    peers.failed(peer, NOW)
    peers.failed(peer, NOW)
    assert peers.count(OUT) == 0
    assert peers.to_dial(NOW) == []
    assert peers.to_dial(NOW + 3_999) == []
    assert peers.to_dial(NOW + 4_000) == [peer]


def test_a_failure_frees_an_outbound_slot_for_another_address() -> None:
    peers = table(max_outbound=1)
    first = learned(peers, addr(1))
    learned(peers, addr(2))
    assert dial_all(peers, NOW) == [addr(1)]
    assert peers.to_dial(NOW) == []
    peers.failed(first, NOW)
    assert dial_all(peers, NOW) == [addr(2)]


def test_an_address_that_keeps_failing_is_forgotten() -> None:
    peers = table()
    peer = learned(peers, addr(1))
    outcomes = fail_times(peers, peer, FORGET_AFTER_FAILURES, NOW)
    assert outcomes == [False] * (FORGET_AFTER_FAILURES - 1) + [True]
    assert addr(1) not in peers
    assert peers.to_dial(NOW + MAX_BACKOFF_MS) == []
    assert FORGET_AFTER_FAILURES == 10


def test_a_seed_is_never_forgotten_however_often_it_fails() -> None:
    peers = table()
    seed = learned(peers, addr(1), source="seed")
    assert not any(fail_times(peers, seed, 5 * FORGET_AFTER_FAILURES, NOW))
    assert peers.get(addr(1)) is seed
    assert seed.next_try == NOW + MAX_BACKOFF_MS
    assert peers.to_dial(NOW + MAX_BACKOFF_MS) == [seed]


def test_a_successful_handshake_resets_the_failure_count() -> None:
    peers = table()
    peer = learned(peers, addr(1))
    assert not any(fail_times(peers, peer, FORGET_AFTER_FAILURES - 1, NOW))
    peers.connected_ok(peer, NOW + MAX_BACKOFF_MS, direction=OUT)
    assert not any(fail_times(peers, peer, FORGET_AFTER_FAILURES - 1, NOW + MAX_BACKOFF_MS))
    assert peers.get(addr(1)) is peer
    assert peers.failed(peer, NOW + MAX_BACKOFF_MS)


def test_an_inbound_peer_that_keeps_failing_is_forgotten_too() -> None:
    peers = table()
    peer = inbound(peers, addr(1), NOW)
    assert peer is not None
    assert fail_times(peers, peer, FORGET_AFTER_FAILURES, NOW)[-1]
    assert addr(1) not in peers
    assert peers.count(IN) == 0


# --- discouragement --------------------------------------------------------------------------


def test_discouraging_disconnects_and_says_why() -> None:
    peers = table()
    peer = learned(peers, addr(1))
    peers.connected_ok(peer, NOW, direction=OUT)
    peers.discourage(peer, "invalid block 00ab: high-hash", NOW)
    assert not peer.connected
    assert peers.count(OUT) == 0
    assert peer.discouraged(NOW)
    assert peer.reason == "invalid block 00ab: high-hash"
    view = peer.view(NOW)
    assert view["discouraged"] is True
    assert view["reason"] == "invalid block 00ab: high-hash"


def test_a_discouraged_peer_is_refused_for_ten_minutes_and_no_longer() -> None:
    peers = table()
    peer = learned(peers, addr(1))
    peers.connected_ok(peer, NOW, direction=OUT)
    peers.discourage(peer, "bad-merkle-root", NOW)
    end = NOW + 10 * 60_000
    assert DISCOURAGE_MS == 10 * 60_000
    for moment in (NOW, NOW + 1, end - 1):
        assert peer.discouraged(moment)
        assert peers.to_dial(moment) == []
        assert peers.accept_inbound(addr(1), moment) is None
        assert peers.good_addresses(moment) == []
    assert not peer.discouraged(end)
    assert peers.to_dial(end) == [peer]
    assert peers.good_addresses(end) == [addr(1)]
    assert inbound(peers, addr(1), end) is peer
    assert peer.view(end)["discouraged"] is False


def test_learning_a_discouraged_address_again_does_not_clear_it() -> None:
    peers = table()
    peer = learned(peers, addr(1))
    peers.discourage(peer, "wrong network 'mainnet'", NOW)
    assert learned(peers, addr(1), source="seed") is peer
    assert learned(peers, addr(1) + "/", source="inbound") is peer
    assert peer.discouraged(NOW + 1)
    assert peers.to_dial(NOW + 1) == []


def test_discouraging_a_peer_frees_its_slot_for_another() -> None:
    peers = table(max_outbound=1)
    learned(peers, addr(1))
    learned(peers, addr(2))
    assert dial_all(peers, NOW) == [addr(1)]
    bad = peers.get(addr(1))
    assert bad is not None
    peers.discourage(bad, "oversized message", NOW)
    assert dial_all(peers, NOW) == [addr(2)]


def test_a_failure_during_the_cool_down_does_not_shorten_it() -> None:
    peers = table()
    peer = learned(peers, addr(1))
    peers.discourage(peer, "bad-signature", NOW)
    peers.failed(peer, NOW + 1)
    assert peers.to_dial(NOW + 60_000) == []
    assert peers.accept_inbound(addr(1), NOW + 60_000) is None
    assert peers.to_dial(NOW + DISCOURAGE_MS) == [peer]


def test_a_repeat_offence_restarts_the_cool_down() -> None:
    peers = table()
    peer = learned(peers, addr(1))
    peers.discourage(peer, "first", NOW)
    later = NOW + DISCOURAGE_MS // 2
    peers.discourage(peer, "second", later)
    assert peer.reason == "second"
    assert peer.discouraged(NOW + DISCOURAGE_MS)
    assert not peer.discouraged(later + DISCOURAGE_MS)


# --- addresses we tell others about ----------------------------------------------------------


def test_good_addresses_lists_connected_peers_first_then_the_most_recently_seen() -> None:
    peers = table()
    old = learned(peers, addr(1))
    recent = learned(peers, addr(2))
    live = learned(peers, addr(3))
    learned(peers, addr(4))
    peers.connected_ok(old, NOW, direction=OUT)
    peers.connected_ok(recent, NOW + 10, direction=OUT)
    peers.connected_ok(live, NOW - 1_000, direction=OUT)
    peers.failed(old, NOW + 20)
    peers.failed(recent, NOW + 20)
    assert peers.good_addresses(NOW + 20) == [addr(3), addr(2), addr(1)]


def test_good_addresses_never_lists_unproven_or_discouraged_peers() -> None:
    peers = table()
    learned(peers, addr(1), source="seed")
    bad = learned(peers, addr(2))
    good = learned(peers, addr(3))
    peers.connected_ok(bad, NOW, direction=OUT)
    peers.connected_ok(good, NOW, direction=OUT)
    peers.discourage(bad, "bad-pow", NOW)
    assert peers.good_addresses(NOW) == [addr(3)]
    assert SELF not in peers.good_addresses(NOW)


def test_good_addresses_are_bounded() -> None:
    peers = table(max_inbound=300)
    for n in range(150):
        assert inbound(peers, addr(n), NOW + n) is not None
    assert len(peers.good_addresses(NOW + 200)) == 100
    assert len(peers.good_addresses(NOW + 200, limit=7)) == 7
    assert peers.good_addresses(NOW + 200, limit=3) == [addr(149), addr(148), addr(147)]


# --- what a peer shows and remembers ---------------------------------------------------------


def test_view_shows_what_v1_peers_reports() -> None:
    peers = table()
    peer = inbound(peers, addr(1) + "/", NOW)
    assert peer is not None
    peer.node_id = "node-1"
    peer.height = 42
    peer.best_hash = "00" * 32
    assert peer.view(NOW) == {
        "url": addr(1),
        "node_id": "node-1",
        "direction": "inbound",
        "height": 42,
        "best_hash": "00" * 32,
        "last_seen": NOW,
        "discouraged": False,
        "reason": None,
    }


def test_known_set_forgets_the_oldest_hash_first() -> None:
    known = KnownSet(capacity=3)
    for item in ("a", "b", "c"):
        known.add(item)
    known.add("a")
    known.add("d")
    assert len(known) == 3
    assert "b" not in known
    assert all(item in known for item in ("a", "c", "d"))
    known.add("e")
    assert "c" not in known
    assert len(known) == 3


def test_each_peer_remembers_its_own_blocks_and_transactions() -> None:
    peers = table()
    one = learned(peers, addr(1))
    two = learned(peers, addr(2))
    one.known_blocks.add("block")
    one.known_txs.add("tx")
    assert "block" in one.known_blocks
    assert "tx" in one.known_txs
    assert "block" not in two.known_blocks
    assert "tx" not in two.known_txs
    assert "block" not in one.known_txs


# --- limits hold whatever happens ------------------------------------------------------------

ADDRESS = st.integers(min_value=0, max_value=11)
PICK = st.integers(min_value=0, max_value=1_000)


class PeerTableMachine(RuleBasedStateMachine):
    """Random sequences of learning, dialing, inbound handshakes, failures, discouragement
    and time passing; the slots are never over-filled and nobody discouraged is connected."""

    def __init__(self) -> None:
        super().__init__()
        self.peers = table()
        self.now = NOW

    @initialize(outbound=st.integers(0, 4), inbound=st.integers(0, 4))
    def limits(self, outbound: int, inbound: int) -> None:
        self.peers = table(max_outbound=outbound, max_inbound=inbound)

    @rule(n=ADDRESS, source=st.sampled_from(["seed", "gossip", "inbound"]))
    def learn(self, n: int, source: str) -> None:
        known = self.peers.get(addr(n))
        peer = self.peers.learn(addr(n), source=source)
        assert peer is not None
        assert known is None or peer is known

    @rule()
    def dial(self) -> None:
        free = self.peers.max_outbound - self.peers.count(OUT)
        offered = self.peers.to_dial(self.now)
        assert len(offered) <= max(free, 0)
        for peer in offered:
            assert not peer.connected
            assert not peer.discouraged(self.now)
            assert peer.next_try <= self.now
            self.peers.connected_ok(peer, self.now, direction=OUT)

    @rule(n=ADDRESS)
    def handshake_from(self, n: int) -> None:
        known = self.peers.get(addr(n))
        full = self.peers.count(IN) >= self.peers.max_inbound
        peer = inbound(self.peers, addr(n), self.now)
        if known is not None and known.discouraged(self.now):
            assert peer is None
        elif known is not None and known.connected:
            assert peer is known
        elif full:
            assert peer is None
        else:
            assert peer is not None
            assert peer.direction is IN

    @precondition(lambda self: len(self.peers) > 0)
    @rule(pick=PICK)
    def fail(self, pick: int) -> None:
        peer = self.peers.all()[pick % len(self.peers)]
        expect_forgotten = peer.failures + 1 >= FORGET_AFTER_FAILURES and peer.source != "seed"
        forgotten = self.peers.failed(peer, self.now)
        assert forgotten == expect_forgotten
        assert (peer.url not in self.peers) == forgotten
        assert not peer.connected
        assert peer.next_try > self.now
        assert peer not in self.peers.to_dial(self.now)

    @precondition(lambda self: len(self.peers) > 0)
    @rule(pick=PICK)
    def discourage(self, pick: int) -> None:
        peer = self.peers.all()[pick % len(self.peers)]
        self.peers.discourage(peer, "misbehaved", self.now)
        assert not peer.connected
        assert self.peers.accept_inbound(peer.url, self.now) is None
        assert peer not in self.peers.to_dial(self.now)
        assert peer.url not in self.peers.good_addresses(self.now)

    @rule(ms=st.integers(min_value=0, max_value=DISCOURAGE_MS + 1))
    def tick(self, ms: int) -> None:
        self.now += ms

    @invariant()
    def slots_are_never_over_filled(self) -> None:
        assert self.peers.count(OUT) <= self.peers.max_outbound
        assert self.peers.count(IN) <= self.peers.max_inbound
        assert len(self.peers.connected()) == self.peers.count(OUT) + self.peers.count(IN)

    @invariant()
    def nobody_discouraged_is_connected_or_advertised(self) -> None:
        good = set(self.peers.good_addresses(self.now))
        for peer in self.peers.all():
            if peer.discouraged(self.now):
                assert not peer.connected
                assert peer.url not in good

    @invariant()
    def we_never_know_ourselves(self) -> None:
        assert SELF not in self.peers
        assert len(self.peers) <= MAX_ADDRESSES


TestPeerTableMachine = PeerTableMachine.TestCase
TestPeerTableMachine.settings = settings(
    max_examples=60,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


# --- which rejected transactions punish their sender -----------------------------------------


def _documented_codes(doc: str | None) -> set[str]:
    return set(re.findall(r"^- ``([a-z-]+)``", doc or "", flags=re.MULTILINE))


TX_FAULTS = ["bad-signature", "bad-tx-schema", "bad-json", "tx-too-large", "wrong-network"]
LEDGER_CONFLICTS = [
    "duplicate",
    "duplicate-nonce",
    "unknown-reference",
    "bad-reference-kind",
    "not-subject-signer",
    "already-revoked",
]


@pytest.mark.parametrize("code", [*TX_FAULTS, "bad-signer"])
def test_a_fault_in_the_transaction_itself_punishes_its_sender(code: str) -> None:
    assert punishes_tx(code)


@pytest.mark.parametrize("code", LEDGER_CONFLICTS)
def test_a_ledger_conflict_is_an_honest_race_and_never_punishes(code: str) -> None:
    assert not punishes_tx(code)


@pytest.mark.parametrize(
    "code",
    [
        "mempool-full",
        "internal-error",
        "shutting-down",
        "network-inactive",
        "time-too-new",
        "",
        "Bad-Signature",
        "bad-signature ",
        "bad",
    ],
)
def test_our_own_trouble_and_unknown_codes_never_punish(code: str) -> None:
    assert not punishes_tx(code)


def test_every_documented_reject_code_has_a_punishment_decision() -> None:
    context_free = _documented_codes(consensus.tx.__doc__)
    ledger = _documented_codes(consensus.ledger.__doc__)
    assert context_free == set(TX_FAULTS)
    assert ledger == set(LEDGER_CONFLICTS)
    assert all(punishes_tx(code) for code in context_free)
    assert not any(punishes_tx(code) for code in ledger)
