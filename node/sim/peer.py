"""One simulated node: the node's peer protocol core (``node.p2p.protocol.PeerProtocol``)
and fork choice (``consensus.chain``), driven by simulated messages instead of HTTP.

This is a second driver of the core beside the node's asyncio shell
(``node.p2p.service.P2P``), and it carries the core's actions out the same way: a
``Dial`` is a hello, its answer fed to ``answered`` and the ``Finish`` sent, the session
token fed to ``opened``; a ``Send`` goes on the peer's sender, which has one request in
flight (``node.p2p.gossip``); a ``Sync`` starts a headers-first sync from that peer, one
at a time, with ``node.p2p.policy.BlockDownload`` deciding what to fetch from whom
(``node.p2p.sync``); ``Discover`` asks for addresses; ``Disconnect`` closes the sender.
Every later request carries the session token and is authenticated by the answering
core. ``Persist`` and ``Forget`` have no store to write to. The core's timer ``tick``
runs every ``MAINTAIN_EVERY_S``.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from consensus.chain import Entry
from node.chainstate import BlockOutcome
from node.p2p.headersync import MAX_HEADERS
from node.p2p.identity import NodeKey
from node.p2p.messages import Best, Hello, HelloAnswer, HelloFinish
from node.p2p.peers import Peer
from node.p2p.protocol import (
    Action,
    Dial,
    Disconnect,
    Discourage,
    Discover,
    Finish,
    PeerProtocol,
    Refused,
    Send,
    Sync,
)
from node.p2p.service import MAINTAIN_EVERY_S
from node.sim.chainport import SimChain
from node.sim.events import US_PER_MS, US_PER_S
from node.sim.syncing import SimSync
from node.sim.wire import Host, Served, Sizes
from node.version import VERSION

if TYPE_CHECKING:
    from node.sim.blocks import SimBlock

__all__ = ["SimNode", "url_of"]

MAINTAIN_US = round(MAINTAIN_EVERY_S * US_PER_S)
_AUTHENTICATED = ("block", "headers", "fetch", "peers")


def url_of(index: int) -> str:
    return f"http://n{index:05d}.sim"


def index_of(url: str) -> int:
    return int(url[8:13])


class _Sender:
    """``Gossip``'s per-peer queue: blocks in order, one request in flight."""

    __slots__ = ("busy", "queue")

    def __init__(self) -> None:
        self.queue: deque[SimBlock] = deque()
        self.busy = False


class SimNode:
    """A node: the core, its chain, and the driver between them and the fabric."""

    def __init__(
        self,
        sim: Host,
        index: int,
        key: NodeKey,
        rng: random.Random,
        *,
        max_outbound: int,
        max_inbound: int,
    ) -> None:
        self.sim = sim
        self.index = index
        self.url = url_of(index)
        self.chain = SimChain(sim.params, sim.genesis)
        self.core = PeerProtocol(
            key=key,
            chain=self,
            network=sim.params.network,
            genesis_hash=sim.genesis.hash,
            listen_url=self.url,
            rng=rng,
            version=VERSION,
            max_outbound=max_outbound,
            max_inbound=max_inbound,
        )
        self.cpu_free_at = 0
        self.syncing = False
        """Downloading bodies: the core relays no blocks meanwhile (``ChainView``)."""
        self.syncer = SimSync(self)
        self._senders: dict[str, _Sender] = {}
        self.discouraged: list[tuple[str, str]] = []
        """(node_id, reason) of every discouragement this node made."""

    # --- the core's chain port (``ChainView``) -------------------------------------------

    def best(self) -> Best:
        tip = self.chain.tip
        return Best(tip.hash, tip.height, tip.chain_work)

    def is_syncing(self) -> bool:
        return self.syncing

    # --- time and work -----------------------------------------------------------------

    @property
    def now(self) -> int:
        return self.sim.queue.now

    def now_ms(self) -> int:
        return self.sim.params.genesis_timestamp_ms + self.sim.queue.now // US_PER_MS

    def work(self, cost_us: int, then: Callable[[], None]) -> None:
        """Spend ``cost_us`` of this node's CPU, then run ``then``."""
        done = max(self.now, self.cpu_free_at) + cost_us
        self.cpu_free_at = done
        self.sim.queue.at(done, _call, then)

    # --- lifecycle and actions ---------------------------------------------------------

    def start(self, seeds: list[int], phase_us: int) -> None:
        self.do(self.core.load([], [url_of(s) for s in seeds], self.now_ms()))
        self.sim.queue.at(self.now + phase_us, self._tick)

    def _tick(self, _: Any = None) -> None:
        self.do(self.core.tick(self.now_ms()))
        self.sim.queue.at(self.now + MAINTAIN_US, self._tick)

    def do(self, actions: Sequence[Action]) -> None:
        """Carry out the core's actions (``P2P.do``)."""
        for action in actions:
            if isinstance(action, Send):
                sender = self._senders.get(action.url)
                if sender is not None and action.kind == "block":
                    sender.queue.append(self.sim.blocks[action.item])
                    if not sender.busy:
                        self._send_next(action.url, sender)
            elif isinstance(action, Dial):
                self._handshake(action)
            elif isinstance(action, Discover):
                self._discover(action)
            elif isinstance(action, Sync):
                self._start_sync(action)
            elif isinstance(action, Discourage):
                self.discouraged.append((action.node_id, action.reason))
            elif isinstance(action, Disconnect):
                self._senders.pop(action.url, None)
            # Finish comes only inside a handshake; Persist and Forget have no store here.

    def failed(self, peer: Peer) -> None:
        """A call to a connected peer failed (``P2P.failed``)."""
        if peer.node_id is not None:
            self.do(self.core.request_failed(peer.node_id, "unavailable", self.now_ms()))

    def misbehaved(self, peer: Peer, reason: str) -> None:
        if peer.node_id is not None:
            self.do(self.core.misbehaved(peer.node_id, reason, self.now_ms()))

    # --- outbound requests ---------------------------------------------------------------

    def _handshake(self, dial: Dial) -> None:
        """Hello, the answer's proof checked by the core, finish, the session opened."""
        url, dst, costs = dial.url, index_of(dial.url), self.sim.costs

        def failed(_: Any = None) -> None:
            self.do(self.core.dial_failed(url, "unavailable or refused", self.now_ms()))

        def answered(answer: Any) -> None:
            if not isinstance(answer, HelloAnswer):
                failed()
                return
            self.work(costs.verify_us + costs.sign_us, lambda: finish(answer))

        def finish(answer: HelloAnswer) -> None:
            actions = self.core.answered(url, answer, self.now_ms())
            step = next((a for a in actions if isinstance(a, Finish)), None)
            self.do([a for a in actions if a is not step])
            if step is not None:
                fabric.request(self.index, dst, "finish", step.finish, Sizes.FINISH, opened, failed)

        def opened(token: Any) -> None:
            if not isinstance(token, str):
                failed()
                return
            self.do(self.core.opened(url, token, self.now_ms()))
            peer = self.core.table.get(url)
            if peer is not None and peer.connected and url not in self._senders:
                self._senders[url] = _Sender()

        fabric = self.sim.fabric
        fabric.request(self.index, dst, "hello", dial.hello, Sizes.HELLO, answered, failed)

    def call(
        self,
        peer: Peer,
        kind: str,
        payload: Any,
        size: int,
        on_answer: Callable[[Any], None],
        on_fail: Callable[[Any], None],
    ) -> None:
        """A request within our session at ``peer`` (``P2P.call``)."""
        if peer.token is None:
            on_fail(None)
            return
        body = (peer.token, self.core.node_id, payload)
        self.sim.fabric.request(
            self.index, index_of(peer.url), kind, body, size, on_answer, on_fail
        )

    def _discover(self, action: Discover) -> None:
        peer = self.core.peer(action.node_id)
        if peer is None:
            return

        def answered(urls: Any) -> None:
            if isinstance(urls, list):
                self.do(self.core.addresses_received(action.node_id, urls, self.now_ms()))

        self.call(peer, "peers", None, Sizes.HTTP, answered, lambda _: None)

    # --- serving requests ----------------------------------------------------------------

    def serve(self, kind: str, body: Any, src: int) -> Served:
        costs = self.sim.costs
        now_ms = self.now_ms()
        try:
            if kind == "hello":
                assert isinstance(body, Hello)
                answer = self.core.hello_received(body, now_ms)
                return Served(answer, Sizes.HELLO_ANSWER, costs.small_us + costs.sign_us)
            if kind == "finish":
                assert isinstance(body, HelloFinish)
                token, actions = self.core.finish_received(body, now_ms)
                self.do(actions)
                return Served(token, Sizes.SESSION, costs.small_us + costs.verify_us)
            assert kind in _AUTHENTICATED
            token, claimed, payload = body
            node_id = self.core.authenticate(token, claimed, now_ms)
        except Refused as refused:
            return Served(refused, Sizes.ANSWER, costs.small_us)
        if kind == "block":
            return self._on_block(payload, node_id)
        if kind == "headers":
            entries = self.chain.headers_after(payload, MAX_HEADERS)
            headers = [self.sim.blocks[e.hash].header for e in entries]
            return Served(headers, Sizes.ANSWER + Sizes.HEADER * len(headers), costs.small_us)
        if kind == "peers":
            urls = self.core.good_addresses(now_ms)
            return Served(urls, Sizes.ANSWER + 30 * len(urls), costs.small_us)
        run: list[SimBlock] = []
        for block_hash in payload:  # a prefix of what was asked: what this node holds
            if not self.chain.has_body(block_hash):
                break
            run.append(self.sim.blocks[block_hash])
        size = Sizes.ANSWER + sum(b.size for b in run)
        return Served(run, size, costs.small_us + sum(costs.parse_tx_us * b.txs for b in run))

    def _on_block(self, block: SimBlock, node_id: str) -> Served:
        """``P2P.on_block``: the chain judges the block, the core hears the outcome, and
        what joined the active chain is relayed once the CPU is done with it."""
        costs = self.sim.costs
        peer = self.core.peer(node_id)
        if peer is not None:
            peer.known_blocks.add(block.hash)
        result = self.chain.process_block(block.header, self.now_ms())
        outcome = result.outcome
        code = "invalid" if outcome is BlockOutcome.REJECTED else None
        self.do(self.core.block_received(node_id, block.hash, outcome.value, code, self.now_ms()))
        if outcome is BlockOutcome.DUPLICATE:
            return Served(None, Sizes.ANSWER, costs.duplicate(block.txs))
        cost = costs.block(block.txs)
        if outcome is not BlockOutcome.ACCEPTED:
            return Served(None, Sizes.ANSWER, cost)
        connected = result.connected

        def then() -> None:
            self.sim.held(self.index, block.hash)
            self.relay(connected)

        return Served(None, Sizes.ANSWER, cost, then)

    # --- gossip ------------------------------------------------------------------------

    def relay(self, connected: list[Entry]) -> None:
        """The chain's "block connected" event, to the core (``P2P.relay_block``)."""
        if connected:
            self.do(self.core.block_connected([e.hash for e in connected], self.now_ms()))

    def _send_next(self, url: str, sender: _Sender) -> None:
        peer = self.core.table.get(url)
        if not sender.queue or self._senders.get(url) is not sender or peer is None:
            sender.busy = False
            return
        sender.busy = True
        block = sender.queue.popleft()

        def answered(answer: Any) -> None:
            if isinstance(answer, Refused) and answer.code in ("peer-discouraged", "no-session"):
                lost()
                return
            self._send_next(url, sender)

        def lost(_: Any = None) -> None:
            sender.busy = False
            if self._senders.get(url) is sender:
                self._senders.pop(url, None)
                self.failed(peer)

        self.call(peer, "block", block, Sizes.HTTP + block.size, answered, lost)

    def mined(self, block: SimBlock) -> None:
        """Our own block: the same chain path as a pushed one."""
        result = self.chain.process_block(block.header, self.now_ms())
        if result.outcome is BlockOutcome.ACCEPTED:
            self.sim.held(self.index, block.hash)
            self.relay(result.connected)

    # --- sync ----------------------------------------------------------------------------

    def _start_sync(self, action: Sync) -> None:
        """One sync at a time (``SyncRunner``'s lock), from a peer still connected."""
        if self.syncer.busy:
            return
        peer = self.core.peer(action.node_id)
        if peer is not None:
            self.syncer.start(peer)


def _call(then: Callable[[], None]) -> None:
    then()
