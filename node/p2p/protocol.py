"""The peer protocol's sans-I/O core: who is who, whom to dial, whom to tell what, whom
to punish. No sockets, no clock, no randomness of its own (h11's ``Connection`` is the
model): every method is an *event* with the time passed in, and returns the *actions*
the driver must carry out. The node's asyncio/httpx shell (``node.p2p.service``) is one
driver; ``ailedger simulate`` is another, over simulated links. Both run this class.

Peers are named by ``node_id`` (their Ed25519 node key, ``node.p2p.identity``) once a
hello proved it; addresses are opaque ``http(s)://`` strings the driver knows how to
reach. A listen address is believed only after dialing it and meeting the same node.

Events (methods; each returns ``list[Action]`` unless said otherwise)::

    load(rows, seeds, now)               stored addresses and the user's seeds, at start
    tick(now)                            timer (every ~2 s): dial free slots, refresh tips
    connect(url, now)                    the operator's "connect now" (lifts a discouragement)
    answered(url, answer, now)           the reply to ``Dial``: a HelloAnswer
    opened(url, token, now)              the reply to ``Finish``: a session token
    dial_failed(url, why, now)           ``Dial``/``Finish`` got no usable reply
    request_failed(node_id, why, now)    any later call to a connected peer failed
    hello_received(hello, now)  -> HelloAnswer       inbound, step 1 (raises ``Refused``)
    finish_received(finish, now) -> (token, actions) inbound, step 2 (raises ``Refused``)
    authenticate(token, claimed, now) -> node_id     every later inbound request (``Refused``)
    block_received(node_id, hash, outcome, code, now)   after the chain judged a pushed block
    txs_received(node_id, [(txid, status, code)], now)  after the mempool judged pushed txs
    addresses_received(node_id, urls, now)           the reply to ``Discover``
    misbehaved(node_id, reason, now)                 the driver caught bad data (sync, size)
    block_connected(hashes, now)         the active chain gained blocks: relay them
    txs_accepted(txids, source, now)     the mempool gained transactions: relay them
    set_active(active, now)              setnetworkactive

Actions (frozen dataclasses)::

    Dial(url, hello)             POST the hello; feed the reply to answered()/dial_failed()
    Finish(url, finish)          POST the finish; feed the token to opened()/dial_failed()
    Discover(node_id, url)       ask the peer for addresses; feed them to addresses_received()
    Sync(node_id, url, force)    headers-first sync from that peer (``node.p2p.sync``)
    Send(node_id, url, kind, item)  push block/tx ``item`` (hash/txid) to a connected peer
    Discourage(node_id, url, reason)  logged and shown; the core has already refused it
    Disconnect(node_id, url)     stop sending to it
    Persist(url) / Forget(url)   write / delete the address's row (the book stays bounded)

A driver's loop, in short: call ``load`` once and ``tick`` every couple of seconds; for
each ``Dial`` deliver ``hello`` to the address and hand the reply to ``answered``, which
returns a ``Finish`` to deliver likewise, whose token goes to ``opened`` (a failure at
either step to ``dial_failed``); on the answering side call ``hello_received`` and
``finish_received`` with what arrives, ``authenticate`` every later request, and report
what the chain made of pushed blocks and transactions. Actions name peers by node_id
(and the address to reach them at); the driver looks up the body a ``Send`` names.
``tests/node/test_p2p_protocol.py`` has a complete driver of a dozen lines (``Net``).

The chain port (``ChainView``) gives the core the best block to announce and whether
the node is syncing (a syncing node relays no blocks). What a ``Sync`` action asks
of whom, in what order, lives in ``node.p2p.headersync`` (the next locator, what a run
proves, the target and the peers to download from) and ``policy.BlockDownload`` (the
window); ``node.p2p.sync`` carries them out over HTTP. A driver constructs
``PeerProtocol(key, chain, network=, genesis_hash=, listen_url=, rng=)`` with any
``random.Random`` (the node passes ``random.SystemRandom()``: challenges and tokens must
be unguessable; a simulator passes a seeded one).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from node.p2p.actions import (
    Action,
    ChainView,
    Dial,
    Disconnect,
    Discourage,
    Discover,
    Finish,
    Forget,
    Persist,
    Refused,
    Send,
    Sync,
)
from node.p2p.identity import NodeKey, hello_transcript, verify_hello
from node.p2p.messages import Best, Hello, HelloAnswer, HelloFinish
from node.p2p.peers import DISCOURAGE_MS, Direction, Peer, PeerTable
from node.p2p.policy import punishes_tx
from node.p2p.sessions import Bans, Session, Sessions

__all__ = [
    "Action",
    "ChainView",
    "Dial",
    "Disconnect",
    "Discourage",
    "Discover",
    "Finish",
    "Forget",
    "PeerProtocol",
    "Persist",
    "Refused",
    "Send",
    "Session",
    "Sync",
]

REFRESH_MS = 15_000
"""A connected peer's tip is asked again (a new hello) this often."""
MAX_VERIFYING = 16
"""Listen addresses being dialed back at once, at most (no dial-back amplification)."""


@dataclass
class _Dialing:
    challenge: str
    verify: str | None
    answer: Hello | None = None


@dataclass
class PeerProtocol:
    key: NodeKey
    chain: ChainView
    network: str
    genesis_hash: str
    listen_url: str
    rng: random.Random
    version: str = "0"
    max_outbound: int = 8
    max_inbound: int = 32
    refresh_ms: int = REFRESH_MS
    """How often a connected peer is asked its tip again (a new hello); 0: never (a
    simulator whose peers push every block has no need)."""
    verify: Callable[[str, bytes, object], bool] | None = None
    """Checks a hello signature (``identity.verify_hello`` when None): a simulator may
    pass a cheaper stand-in for its own keys."""
    active: bool = True
    table: PeerTable = field(init=False)
    _sessions: Sessions = field(init=False)
    _bans: Bans = field(init=False, default_factory=Bans)
    _links: dict[str, Peer] = field(init=False, default_factory=dict)
    _dialing: dict[str, _Dialing] = field(init=False, default_factory=dict)
    _refreshed: dict[str, int] = field(init=False, default_factory=dict)
    _want_sync: set[str] = field(init=False, default_factory=set)
    """Nodes that told us of a block we lack before their address was verified."""

    def __post_init__(self) -> None:
        self.listen_url = self.listen_url.rstrip("/")
        self._sessions = Sessions(self.max_inbound + self.max_outbound, self.rng)
        self.table = PeerTable(
            self_url=self.listen_url, max_outbound=self.max_outbound, max_inbound=self.max_inbound
        )

    @property
    def node_id(self) -> str:
        return self.key.node_id

    # --- queries -------------------------------------------------------------------------

    def peer(self, node_id: str) -> Peer | None:
        """The connected peer ``node_id`` (its address verified, our session at it)."""
        return self._links.get(node_id)

    def peers(self) -> list[Peer]:
        return list(self._links.values())

    def session(self, node_id: str) -> Session | None:
        """The session ``node_id`` holds with us (it proved its key to us), if any."""
        return self._sessions.of(node_id)

    def discouraged(self, node_id: str, now: int) -> str | None:
        """Why ``node_id`` is refused now, or None."""
        return self._bans.reason(node_id, now)

    def good_addresses(self, now: int) -> list[str]:
        return self.table.good_addresses(now)

    def pending_hellos(self) -> int:
        return self._sessions.pending()

    def session_count(self) -> int:
        return len(self._sessions)

    def _hello(self, challenge: str) -> Hello:
        return Hello(
            network=self.network,
            genesis_hash=self.genesis_hash,
            node_id=self.node_id,
            version=self.version,
            listen_url=self.listen_url,
            best=self.chain.best(),
            challenge=challenge,
        )

    def _verify(self, node_id: str, transcript: bytes, signature: object) -> bool:
        return (self.verify or verify_hello)(node_id, transcript, signature)

    def _challenge(self) -> str:
        return self.rng.randbytes(32).hex()

    # --- start, timers, the operator ------------------------------------------------------

    def load(self, rows: Iterable[dict[str, Any]], seeds: Sequence[str], now: int) -> list[Action]:
        """Stored addresses (their node ids are re-proved by dialing) and the seeds. Rows
        past the address book's bound are forgotten, on disk too."""
        actions: list[Action] = []
        for row in rows:
            peer = self.table.learn(row["url"], source=row.get("source") or "stored")
            if peer is None:
                actions.append(Forget(row["url"]))
                continue
            peer.last_seen = row.get("last_seen")
            peer.failures = row.get("failures") or 0
            node_id = row.get("node_id")
            until = row.get("discouraged_until") or 0
            if isinstance(node_id, str) and len(node_id) == 64 and until > now:
                # A discouragement proved under the node's key: it keeps its cool-down.
                peer.node_id, peer.discouraged_until = node_id, until
                peer.reason = row.get("reason")
                self._bans.ban(node_id, peer.reason or "discouraged", until)
        for url in seeds:
            peer = self.table.learn(url, source="seed")
            if peer is not None:
                peer.source = "seed"
        return actions + self._drain_forgotten()

    def tick(self, now: int) -> list[Action]:
        """Dial addresses into free outbound slots; ask connected peers their tips again."""
        if not self.active:
            return []
        actions: list[Action] = [
            self._dial(p.url, None) for p in self.table.to_dial(now) if p.url not in self._dialing
        ]
        for node_id, peer in list(self._links.items()) if self.refresh_ms else ():
            if (
                now - self._refreshed.get(node_id, now) >= self.refresh_ms
                and peer.url not in self._dialing
            ):
                self._refreshed[node_id] = now
                actions.append(self._dial(peer.url, None))
        self._sessions.expire(now)
        return actions

    def connect(self, url: str, now: int) -> list[Action]:
        """Dial ``url`` now, even with every outbound slot taken, lifting a discouragement
        of that address (Bitcoin's ``addnode onetry``)."""
        peer = self.table.learn(url, source="seed")
        if peer is None:
            return self._drain_forgotten()
        if peer.node_id is not None:
            self._bans.lift(peer.node_id)
        peer.discouraged_until = 0
        peer.next_try = 0
        return [self._dial(peer.url, None), *self._drain_forgotten()]

    def disconnect(self, url: str, now: int) -> list[Action]:
        peer = self.table.get(url.rstrip("/"))
        if peer is None:
            return []
        peer.next_try = now + 60_000
        return self._unlink(peer)

    def set_active(self, active: bool, now: int) -> list[Action]:
        """Off drops every connection and session; on dials again at once."""
        self.active = active
        if not active:
            actions: list[Action] = []
            for peer in list(self._links.values()):
                actions += self._unlink(peer)
            self._sessions.clear()
            return actions
        for peer in self.table.all():
            peer.next_try = 0
        return self.tick(now)

    # --- dialing ---------------------------------------------------------------------------

    def _dial(self, url: str, verify: str | None) -> Dial:
        challenge = self._challenge()
        self._dialing[url] = _Dialing(challenge, verify)
        return Dial(url, self._hello(challenge), verify)

    def answered(self, url: str, answer: HelloAnswer, now: int) -> list[Action]:
        """The answer to our hello: check who it proves to be, then finish."""
        dialing = self._dialing.get(url)
        if dialing is None or dialing.answer is not None:
            return []
        theirs = answer.hello
        transcript = hello_transcript(
            role="answer",
            genesis_hash=theirs.genesis_hash,
            dialer=self.node_id,
            answerer=theirs.node_id,
            dialer_challenge=dialing.challenge,
            answerer_challenge=theirs.challenge,
        )
        if not self._verify(theirs.node_id, transcript, answer.signature):
            return self.dial_failed(url, "hello answer not signed by its node key", now)
        if theirs.node_id == self.node_id:
            del self._dialing[url]
            self.table.forget(url)
            return [Forget(url)]
        peer = self.table.get(url)
        refusal = self._wrong_chain(theirs)
        if refusal is not None:
            del self._dialing[url]
            if peer is not None:
                peer.node_id = theirs.node_id
            return self._punish(theirs.node_id, refusal, now, peer=peer)
        if dialing.verify is not None and dialing.verify != theirs.node_id:
            del self._dialing[url]
            return self._punish(
                dialing.verify, f"claimed listen url {url} of node {theirs.node_id[:16]}", now
            )
        if self.discouraged(theirs.node_id, now) is not None:
            return self.dial_failed(url, "discouraged", now)
        dialing.answer = theirs
        mine = hello_transcript(
            role="dial",
            genesis_hash=self.genesis_hash,
            dialer=self.node_id,
            answerer=theirs.node_id,
            dialer_challenge=dialing.challenge,
            answerer_challenge=theirs.challenge,
        )
        finish = HelloFinish(self.node_id, theirs.challenge, self.key.sign_hello(mine))
        return [Finish(url, finish)]

    def opened(self, url: str, token: str, now: int) -> list[Action]:
        """Our session at ``url`` is open: the peer is connected (its address verified)."""
        dialing = self._dialing.pop(url, None)
        if dialing is None or dialing.answer is None:
            return []
        theirs = dialing.answer
        peer = self.table.get(url)
        if peer is None:
            peer = self.table.learn(url, source="inbound" if dialing.verify else "seed")
            if peer is None:
                return self._drain_forgotten()
        was = peer.connected
        if not was:
            inbound = dialing.verify is not None
            if inbound and self.table.count(Direction.INBOUND) >= self.max_inbound:
                return []
            if not inbound and not self.table.free_outbound() and peer.source != "seed":
                return []
            self.table.connected_ok(
                peer, now, direction=Direction.INBOUND if inbound else Direction.OUTBOUND
            )
        old = self._links.get(theirs.node_id)
        if old is not None and old is not peer:
            self._unlink(old)
        peer.node_id, peer.token = theirs.node_id, token
        peer.last_seen = now
        self._note_best(peer, theirs.best)
        self._links[theirs.node_id] = peer
        self._refreshed.setdefault(theirs.node_id, now)
        actions: list[Action] = [Persist(peer.url), *self._drain_forgotten()]
        if not was and not dialing.verify:
            actions.append(Discover(theirs.node_id, peer.url))
        force = theirs.node_id in self._want_sync
        self._want_sync.discard(theirs.node_id)
        return actions + self._maybe_sync(peer, force=force)

    def dial_failed(self, url: str, why: str, now: int) -> list[Action]:
        self._dialing.pop(url, None)
        peer = self.table.get(url)
        if peer is None:
            return []
        actions = self._unlink(peer) if peer.node_id in self._links else []
        if self.table.failed(peer, now):
            return [*actions, Forget(url)]
        return [*actions, Persist(url)]

    def request_failed(self, node_id: str, why: str, now: int) -> list[Action]:
        peer = self._links.get(node_id)
        return self.dial_failed(peer.url, why, now) if peer is not None else []

    def addresses_received(self, node_id: str, urls: Sequence[Any], now: int) -> list[Action]:
        source = node_id[:16]
        for url in urls[:100]:
            if isinstance(url, str):
                self.table.learn(url, source=source)
        return self._drain_forgotten()

    # --- inbound handshakes --------------------------------------------------------------

    def _wrong_chain(self, hello: Hello) -> str | None:
        if hello.network != self.network:
            return f"wrong network {hello.network!r}"
        if hello.genesis_hash != self.genesis_hash:
            return f"wrong genesis {hello.genesis_hash!r}"
        return None

    def hello_received(self, hello: Hello, now: int) -> HelloAnswer:
        """Answer a hello with ours, signed over both challenges. Nobody is blamed for a
        refusal here: nothing the hello claims is proved yet. A hello from ourselves is
        answered too: the dialer (we) sees its own node_id and forgets the address."""
        reason = self.discouraged(hello.node_id, now)
        if reason is not None:
            raise Refused(403, "peer-discouraged", f"discouraged: {reason}")
        refusal = self._wrong_chain(hello)
        if refusal is not None:
            raise Refused(403, "hello-refused", refusal)
        ours = self._hello(self._challenge())
        self._sessions.expect(ours.challenge, hello, now)
        transcript = hello_transcript(
            role="answer",
            genesis_hash=self.genesis_hash,
            dialer=hello.node_id,
            answerer=self.node_id,
            dialer_challenge=hello.challenge,
            answerer_challenge=ours.challenge,
        )
        return HelloAnswer(ours, self.key.sign_hello(transcript))

    def finish_received(self, finish: HelloFinish, now: int) -> tuple[str, list[Action]]:
        """The dialer proved its key over our challenge: a session for it, and a dial back
        to the listen address it claims (believed only once the same node answers there)."""
        hello = self._sessions.awaited(finish.challenge, finish.node_id, now)
        if hello is None:
            raise Refused(401, "no-session", "unknown or expired hello challenge")
        transcript = hello_transcript(
            role="dial",
            genesis_hash=self.genesis_hash,
            dialer=hello.node_id,
            answerer=self.node_id,
            dialer_challenge=hello.challenge,
            answerer_challenge=finish.challenge,
        )
        if not self._verify(hello.node_id, transcript, finish.signature):
            raise Refused(401, "no-session", "hello finish not signed by its node key")
        self._sessions.spend(finish.challenge)
        reason = self.discouraged(hello.node_id, now)
        if reason is not None:
            raise Refused(403, "peer-discouraged", f"discouraged: {reason}")
        token = self._sessions.open(hello, now, keep=self._links.__contains__)
        return token, self._check_listen_url(hello, now)

    def _check_listen_url(self, hello: Hello, now: int) -> list[Action]:
        url = hello.listen_url.rstrip("/")
        linked = self._links.get(hello.node_id)
        if linked is not None:
            self._note_best(linked, hello.best)
            return self._maybe_sync(linked)
        known = self.table.get(url)
        if known is not None and known.connected and known.node_id not in (None, hello.node_id):
            return self._punish(
                hello.node_id, f"claimed listen url {url} of node {known.node_id[:16]}", now
            )
        if url == self.listen_url or not url.startswith(("http://", "https://")):
            return []
        verifying = sum(1 for d in self._dialing.values() if d.verify is not None)
        if url in self._dialing or verifying >= MAX_VERIFYING:
            return []
        return [self._dial(url, hello.node_id)]

    def authenticate(self, token: str | None, claimed: str | None, now: int) -> str:
        """The node_id behind an inbound request's session token; ``Refused`` 401 without
        a valid session (nobody is blamed), 403 when that node is discouraged."""
        session = self._sessions.find(token)
        if session is None or (claimed is not None and claimed != session.node_id):
            raise Refused(401, "no-session", "no valid session: say hello first")
        reason = self.discouraged(session.node_id, now)
        if reason is not None:
            raise Refused(403, "peer-discouraged", f"discouraged: {reason}")
        session.last_used = now
        return session.node_id

    # --- what peers send -------------------------------------------------------------------

    def block_received(
        self, node_id: str, block_hash: str, outcome: str, code: str | None, now: int
    ) -> list[Action]:
        peer = self._links.get(node_id)
        if peer is not None:
            peer.known_blocks.add(block_hash)
            peer.last_seen = now
        if outcome == "rejected":
            return self.misbehaved(node_id, f"invalid block {block_hash}: {code}", now)
        if outcome == "need-parents":
            if peer is not None:
                return self._maybe_sync(peer, force=True)
            if node_id in self._sessions and len(self._want_sync) < self.max_inbound:
                self._want_sync.add(node_id)  # synced from once its address is verified
        return []

    def txs_received(
        self, node_id: str, results: Iterable[tuple[str, str, str | None]], now: int
    ) -> list[Action]:
        peer = self._links.get(node_id)
        for txid, _status, code in results:
            if peer is not None and txid:
                peer.known_txs.add(txid)
            if code is not None and punishes_tx(code):
                return self.misbehaved(node_id, f"invalid transaction: {code}", now)
        return []

    def misbehaved(self, node_id: str, reason: str, now: int) -> list[Action]:
        """``node_id`` proved it broke the protocol: refuse it for the cool-down."""
        return self._punish(node_id, reason, now)

    def _punish(
        self, node_id: str, reason: str, now: int, *, peer: Peer | None = None
    ) -> list[Action]:
        self._bans.ban(node_id, reason, now + DISCOURAGE_MS)
        self._sessions.drop(node_id)
        linked = self._links.pop(node_id, None)
        peer = peer or linked
        actions: list[Action] = []
        if linked is not None:
            actions.append(Disconnect(node_id, linked.url))
        if peer is not None:
            self.table.discourage(peer, reason, now)
            actions.append(Persist(peer.url))
        return [Discourage(node_id, peer.url if peer else None, reason), *actions]

    # --- relay -----------------------------------------------------------------------------

    def block_connected(self, hashes: Sequence[str], now: int) -> list[Action]:
        """Push blocks that joined the active chain to every peer not known to have them
        (not while syncing: a node catching up has nothing new to tell)."""
        if not self.active or self.chain.is_syncing():
            return []
        actions: list[Action] = []
        for block_hash in hashes:
            for node_id, peer in self._links.items():
                if block_hash not in peer.known_blocks:
                    peer.known_blocks.add(block_hash)
                    actions.append(Send(node_id, peer.url, "block", block_hash))
        return actions

    def txs_accepted(self, txids: Sequence[str], source: str | None, now: int) -> list[Action]:
        """Push new transactions to every peer not known to have them (``source`` sent them)."""
        if not self.active:
            return []
        actions: list[Action] = []
        for node_id, peer in self._links.items():
            for txid in txids:
                if txid not in peer.known_txs:
                    peer.known_txs.add(txid)
                    if node_id != source:
                        actions.append(Send(node_id, peer.url, "tx", txid))
        return actions

    # --- helpers -----------------------------------------------------------------------------

    def _note_best(self, peer: Peer, best: Best) -> None:
        peer.best_hash, peer.height, peer.chain_work = best.hash, best.height, best.chain_work

    def _maybe_sync(self, peer: Peer, *, force: bool = False) -> list[Action]:
        """Sync from ``peer`` when it claims more work than our tip (or was told to)."""
        if not self.active or peer.node_id is None:
            return []
        if force or peer.chain_work > self.chain.best().chain_work:
            return [Sync(peer.node_id, peer.url, force)]
        return []

    def _unlink(self, peer: Peer) -> list[Action]:
        peer.connected = False
        peer.token = None
        node_id = peer.node_id
        if node_id is None or self._links.get(node_id) is not peer:
            return []
        del self._links[node_id]
        self._refreshed.pop(node_id, None)
        return [Disconnect(node_id, peer.url)]

    def _drain_forgotten(self) -> list[Action]:
        gone: list[Action] = [Forget(url) for url in self.table.forgotten]
        self.table.forgotten.clear()
        return gone
