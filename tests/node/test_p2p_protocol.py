"""The peer protocol core without I/O: cores of several nodes wired to each other by a
tiny driver that carries their actions out at once (what ``ailedger simulate`` does over
simulated links), and attackers that hold only what they could hold: their own keys,
messages they captured, and made-up addresses."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest

from node.p2p.identity import NodeKey, hello_transcript
from node.p2p.messages import Best, Hello, HelloAnswer, HelloFinish
from node.p2p.peers import MAX_ADDRESSES, Direction
from node.p2p.protocol import (
    MAX_VERIFYING,
    Action,
    Dial,
    Discourage,
    Discover,
    Finish,
    Forget,
    PeerProtocol,
    Refused,
    Send,
    Sync,
)
from node.p2p.sessions import MAX_PENDING

GENESIS = "00" * 32
NOW = 1_000_000


@dataclass
class Chain:
    work: int = 1
    syncing: bool = False

    def best(self) -> Best:
        return Best("11" * 32, self.work, self.work)

    def is_syncing(self) -> bool:
        return self.syncing


def key(n: int) -> NodeKey:
    return NodeKey.from_seed(bytes([n]) * 32)


def url(n: int) -> str:
    return f"http://node{n}.test"


def core(n: int, *, work: int = 1, seed: int = 0, **kwargs: int) -> PeerProtocol:
    return PeerProtocol(
        key=key(n),
        chain=Chain(work),
        network="regtest",
        genesis_hash=GENESIS,
        listen_url=url(n),
        rng=random.Random(seed * 1000 + n),
        **kwargs,  # type: ignore[arg-type]
    )


@dataclass
class Net:
    """Delivers Dial/Finish between cores at once, by URL; records every other action."""

    nodes: dict[str, PeerProtocol]
    log: list[tuple[str, Action]] = field(default_factory=list)

    def run(self, origin: PeerProtocol, actions: list[Action]) -> None:
        queue = [(origin, a) for a in actions]
        while queue:
            at, action = queue.pop(0)
            self.log.append((at.listen_url, action))
            if isinstance(action, Dial):
                queue += [(at, a) for a in self._dial(at, action)]

    def _dial(self, at: PeerProtocol, dial: Dial) -> list[Action]:
        other = self.nodes.get(dial.url)
        if other is None:
            return at.dial_failed(dial.url, "unreachable", NOW)
        try:
            answer = other.hello_received(dial.hello, NOW)
        except Refused as exc:
            return at.dial_failed(dial.url, exc.message, NOW)
        actions = at.answered(dial.url, answer, NOW)
        finish = next((a for a in actions if isinstance(a, Finish)), None)
        rest = [a for a in actions if a is not finish]
        if finish is None:
            return rest
        try:
            token, theirs = other.finish_received(finish.finish, NOW)
        except Refused as exc:
            return rest + at.dial_failed(dial.url, exc.message, NOW)
        self.run(other, theirs)
        return rest + at.opened(dial.url, token, NOW)

    def of(self, kind: type, at: PeerProtocol | None = None) -> list[Action]:
        return [
            a
            for where, a in self.log
            if isinstance(a, kind) and (at is None or where == at.listen_url)
        ]


def mesh(*cores: PeerProtocol) -> Net:
    return Net({c.listen_url: c for c in cores})


def handshake_as(
    target: PeerProtocol, signer: NodeKey, claimed: str, listen: str
) -> tuple[Hello, HelloAnswer, HelloFinish]:
    """A hello to ``target`` claiming ``claimed`` and finished with ``signer``'s key."""
    hello = Hello("regtest", GENESIS, claimed, "t", listen, Best("22" * 32, 1, 1), "aa" * 32)
    answer = target.hello_received(hello, NOW)
    transcript = hello_transcript(
        role="dial",
        genesis_hash=GENESIS,
        dialer=claimed,
        answerer=target.node_id,
        dialer_challenge=hello.challenge,
        answerer_challenge=answer.hello.challenge,
    )
    return (
        hello,
        answer,
        HelloFinish(claimed, answer.hello.challenge, signer.sign_hello(transcript)),
    )


def connected(a: PeerProtocol, b: PeerProtocol) -> bool:
    peer = a.peer(b.node_id)
    return peer is not None and peer.connected and peer.url == b.listen_url


# --- the handshake ---------------------------------------------------------------------


def test_a_dial_connects_both_ways_each_side_proving_its_key() -> None:
    a, b = core(1), core(2)
    net = mesh(a, b)
    net.run(a, a.connect(b.listen_url, NOW))
    assert connected(a, b) and a.peer(b.node_id).direction is Direction.OUTBOUND  # type: ignore[union-attr]
    # b believed a's listen URL only after dialing it and meeting a there.
    assert connected(b, a) and b.peer(a.node_id).direction is Direction.INBOUND  # type: ignore[union-attr]
    assert [d.verify for d in net.of(Dial, b)] == [a.node_id]
    assert net.of(Discover, a) == [Discover(b.node_id, b.listen_url)]
    assert a.session(b.node_id) is not None and b.session(a.node_id) is not None


def test_the_node_with_more_work_is_synced_from() -> None:
    a, b = core(1), core(2, work=5)
    net = mesh(a, b)
    net.run(a, a.connect(b.listen_url, NOW))
    assert net.of(Sync, a) == [Sync(b.node_id, b.listen_url, False)]
    assert net.of(Sync, b) == []


def test_the_same_inputs_give_the_same_actions() -> None:
    def actions(seed: int) -> list[tuple[str, Action]]:
        a, b = core(1, seed=seed), core(2, seed=seed)
        net = mesh(a, b)
        net.run(a, a.connect(b.listen_url, NOW))
        return net.log

    assert actions(7) == actions(7)
    assert actions(7) != actions(8)  # the challenges come from the rng given


def test_another_network_is_refused_blaming_nobody_and_discouraged_when_dialed() -> None:
    a, b = core(1), core(2)
    b.network = "devnet"
    hello = Hello("devnet", GENESIS, b.node_id, "t", b.listen_url, Best("22" * 32, 1, 1), "aa" * 32)
    with pytest.raises(Refused) as refused:
        a.hello_received(hello, NOW)
    assert (refused.value.status, refused.value.code) == (403, "hello-refused")
    assert a.discouraged(b.node_id, NOW) is None
    b._wrong_chain = lambda hello: None  # type: ignore[method-assign]  # b answers anyway
    net = mesh(a, b)
    net.run(a, a.connect(b.listen_url, NOW))  # b's signed answer proves who it is
    assert "wrong network" in (a.discouraged(b.node_id, NOW) or "")
    assert a.table.get(b.listen_url).discouraged(NOW)  # type: ignore[union-attr]


def test_a_node_that_dials_itself_forgets_the_address() -> None:
    a = core(1)
    twin = core(1)  # the same key behind another address
    twin.listen_url = "http://alias.test"
    net = mesh(a, twin)
    net.run(a, a.connect("http://alias.test", NOW))
    assert net.of(Forget, a) == [Forget("http://alias.test")]
    assert "http://alias.test" not in a.table


# --- what an attacker can try ------------------------------------------------------------


def test_claiming_an_honest_node_id_without_its_key_opens_no_session() -> None:
    a, honest = core(1), core(2)
    mesh(a, honest).run(a, a.connect(honest.listen_url, NOW))
    _, _, finish = handshake_as(a, key(66), honest.node_id, "http://liar.test")
    with pytest.raises(Refused) as refused:
        a.finish_received(finish, NOW)
    assert (refused.value.status, refused.value.code) == (401, "no-session")
    assert connected(a, honest) and a.discouraged(honest.node_id, NOW) is None


def test_a_forged_hello_answer_connects_nothing() -> None:
    a, b = core(1), core(2)
    [dial] = a.connect(b.listen_url, NOW)
    assert isinstance(dial, Dial)
    answer = b.hello_received(dial.hello, NOW)
    forged = HelloAnswer(answer.hello, "00" * 64)
    assert a.answered(b.listen_url, forged, NOW)[0] == a.dial_failed(b.listen_url, "", NOW)[0]
    assert a.peer(b.node_id) is None and a.discouraged(b.node_id, NOW) is None


def test_a_captured_hello_cannot_be_replayed() -> None:
    a, b = core(1), core(2)
    [dial] = a.connect(b.listen_url, NOW)
    assert isinstance(dial, Dial)
    answer = b.hello_received(dial.hello, NOW)
    [finish] = a.answered(b.listen_url, answer, NOW)
    assert isinstance(finish, Finish)
    b.finish_received(finish.finish, NOW)
    with pytest.raises(Refused):  # the same finish again: its challenge is spent
        b.finish_received(finish.finish, NOW)
    # The captured hello gets a new challenge, which the captured finish does not sign.
    again = b.hello_received(dial.hello, NOW)
    with pytest.raises(Refused):
        b.finish_received(
            HelloFinish(a.node_id, again.hello.challenge, finish.finish.signature), NOW
        )
    # And a captured answer is useless to a dialer with a fresh challenge.
    a.connect(b.listen_url, NOW)
    assert not any(isinstance(x, Finish) for x in a.answered(b.listen_url, answer, NOW))


def test_a_session_is_refused_to_anyone_who_names_another_node() -> None:
    a, b, c = core(1), core(2), core(3)
    net = mesh(a, b, c)
    net.run(b, b.connect(a.listen_url, NOW))
    net.run(c, c.connect(a.listen_url, NOW))
    token_b = b.peer(a.node_id).token  # type: ignore[union-attr]
    assert a.authenticate(token_b, b.node_id, NOW) == b.node_id
    for token, claimed in [(token_b, c.node_id), ("ff" * 24, b.node_id), (None, b.node_id)]:
        with pytest.raises(Refused) as refused:
            a.authenticate(token, claimed, NOW)
        assert refused.value.status == 401
    # A token b issued is worth nothing at another node.
    token_at_b = a.peer(b.node_id).token  # type: ignore[union-attr]
    with pytest.raises(Refused):
        c.authenticate(token_at_b, a.node_id, NOW)
    assert a.discouraged(b.node_id, NOW) is None and a.discouraged(c.node_id, NOW) is None


def test_claiming_an_honest_listen_url_discourages_the_liar_only() -> None:
    a, honest = core(1), core(2)
    net = mesh(a, honest)
    net.run(a, a.connect(honest.listen_url, NOW))
    liar = key(66)
    _, _, finish = handshake_as(a, liar, liar.node_id, honest.listen_url)
    _, actions = a.finish_received(finish, NOW)
    net.run(a, actions)
    assert "claimed listen url" in (a.discouraged(liar.node_id, NOW) or "")
    assert connected(a, honest) and a.discouraged(honest.node_id, NOW) is None
    assert not a.table.get(honest.listen_url).discouraged(NOW)  # type: ignore[union-attr]


def test_a_url_not_yet_verified_is_dialed_back_and_a_mismatch_punishes_the_claimant() -> None:
    a, honest = core(1), core(2)  # not connected yet: a must dial to find out
    net = mesh(a, honest)
    liar = key(66)
    _, _, finish = handshake_as(a, liar, liar.node_id, honest.listen_url)
    _, actions = a.finish_received(finish, NOW)
    assert [d.verify for d in actions if isinstance(d, Dial)] == [liar.node_id]
    net.run(a, actions)
    assert a.discouraged(liar.node_id, NOW) is not None
    assert a.discouraged(honest.node_id, NOW) is None
    assert not a.table.get(honest.listen_url) or not a.table.get(honest.listen_url).discouraged(NOW)  # type: ignore[union-attr]


def test_a_misbehaving_peer_is_discouraged_under_its_own_id_and_refused() -> None:
    a, b, honest = core(1), core(2), core(3)
    net = mesh(a, b, honest)
    net.run(b, b.connect(a.listen_url, NOW))
    net.run(honest, honest.connect(a.listen_url, NOW))
    token = b.peer(a.node_id).token  # type: ignore[union-attr]
    actions = a.block_received(b.node_id, "33" * 32, "rejected", "high-hash", NOW)
    assert actions[0] == Discourage(
        b.node_id, b.listen_url, "invalid block " + "33" * 32 + ": high-hash"
    )
    with pytest.raises(Refused) as refused:
        a.authenticate(token, b.node_id, NOW)
    assert refused.value.status == 401  # its session is gone
    with pytest.raises(Refused) as refused:
        handshake_as(a, key(2), b.node_id, b.listen_url)
    assert refused.value.code == "peer-discouraged"
    assert connected(a, honest) and a.discouraged(honest.node_id, NOW) is None
    assert a.discouraged(b.node_id, NOW + 10 * 60_000) is None  # the cool-down ends


def test_a_flood_of_hellos_with_made_up_addresses_stays_bounded() -> None:
    a, honest = core(1), core(2)
    net = mesh(a, honest)
    net.run(a, a.connect(honest.listen_url, NOW))
    dials = 0
    for n in range(10_000):
        liar = NodeKey.from_seed(n.to_bytes(32, "big"))
        _, _, finish = handshake_as(a, liar, liar.node_id, f"http://made-up-{n}.test")
        _, actions = a.finish_received(finish, NOW)
        dials += sum(isinstance(x, Dial) for x in actions)
    for n in range(10_000):  # hellos never finished
        hello = Hello(
            "regtest", GENESIS, key(3).node_id, "t", url(3), Best("2" * 64, 1, 1), f"{n:064x}"
        )
        a.hello_received(hello, NOW)
    assert a.pending_hellos() <= MAX_PENDING
    assert a.session_count() <= a.max_inbound + a.max_outbound
    assert dials <= MAX_VERIFYING  # unanswered dial-backs are not repeated
    assert len(a.table) <= MAX_ADDRESSES
    assert connected(a, honest) and a.discouraged(honest.node_id, NOW) is None


def test_made_up_addresses_learned_past_the_bound_are_forgotten_on_disk_too() -> None:
    a = core(1)
    rows = [
        {"url": f"http://stored-{n}.test", "source": "stored"} for n in range(MAX_ADDRESSES + 5)
    ]
    forgotten = [x.url for x in a.load(rows, [], NOW) if isinstance(x, Forget)]
    assert len(forgotten) == 5 and len(a.table) == MAX_ADDRESSES
    forgotten = [x.url for x in a.load([], ["http://seed.test"], NOW) if isinstance(x, Forget)]
    assert len(forgotten) == 1 and forgotten[0] not in a.table  # room made for a seed


def test_a_stored_node_id_is_not_trusted_until_the_node_proves_it_again() -> None:
    a = core(1)
    a.load(
        [{"url": url(2), "node_id": "ab" * 8, "discouraged_until": NOW + 5, "reason": "x"}], [], NOW
    )
    peer = a.table.get(url(2))
    assert peer is not None and peer.node_id is None and not peer.discouraged(NOW)


# --- relay -------------------------------------------------------------------------------


def test_a_block_is_relayed_once_to_each_peer_not_known_to_have_it() -> None:
    a, b, c = core(1), core(2), core(3)
    net = mesh(a, b, c)
    net.run(b, b.connect(a.listen_url, NOW))
    net.run(c, c.connect(a.listen_url, NOW))
    a.block_received(b.node_id, "44" * 32, "accepted", None, NOW)
    sends = a.block_connected(["44" * 32], NOW)
    assert sends == [Send(c.node_id, c.listen_url, "block", "44" * 32)]
    assert a.block_connected(["44" * 32], NOW) == []
    a.chain.syncing = True  # type: ignore[attr-defined]
    assert a.block_connected(["55" * 32], NOW) == []


def test_transactions_are_not_sent_back_to_their_source() -> None:
    a, b, c = core(1), core(2), core(3)
    net = mesh(a, b, c)
    net.run(b, b.connect(a.listen_url, NOW))
    net.run(c, c.connect(a.listen_url, NOW))
    assert a.txs_accepted(["66" * 32], b.node_id, NOW) == [
        Send(c.node_id, c.listen_url, "tx", "66" * 32)
    ]


def test_a_faulty_transaction_punishes_its_sender_and_a_conflict_does_not() -> None:
    a, b = core(1), core(2)
    mesh(a, b).run(b, b.connect(a.listen_url, NOW))
    assert a.txs_received(b.node_id, [("77" * 32, "rejected", "duplicate")], NOW) == []
    actions = a.txs_received(b.node_id, [("77" * 32, "rejected", "bad-signature")], NOW)
    assert isinstance(actions[0], Discourage) and a.discouraged(b.node_id, NOW)


def test_need_parents_from_a_peer_syncs_from_it() -> None:
    a, b = core(1), core(2)
    mesh(a, b).run(b, b.connect(a.listen_url, NOW))
    assert a.block_received(b.node_id, "88" * 32, "need-parents", None, NOW) == [
        Sync(b.node_id, b.listen_url, True)
    ]


def test_a_driver_may_pass_its_own_signature_check() -> None:
    a, b = core(1), core(2)
    a.verify = lambda node_id, transcript, signature: False
    net = mesh(a, b)
    net.run(a, a.connect(b.listen_url, NOW))
    assert a.peer(b.node_id) is None and net.of(Finish, a) == []
