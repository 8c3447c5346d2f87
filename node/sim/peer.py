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
from typing import TYPE_CHECKING, Any, Protocol

from consensus.block import Header
from consensus.chain import Entry
from consensus.params import ConsensusParams
from node.chainstate import BlockOutcome
from node.p2p.headersync import (
    MAX_HEADERS,
    download_peers,
    header_fault,
    next_locator,
    run_arrived,
    sync_target,
)
from node.p2p.identity import NodeKey
from node.p2p.messages import Best, Hello, HelloAnswer, HelloFinish
from node.p2p.peers import Peer
from node.p2p.policy import BlockDownload
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
from node.sim.events import US_PER_MS, US_PER_S, EventQueue
from node.sim.wire import Costs, Fabric, Served, Sizes
from node.version import VERSION

if TYPE_CHECKING:
    from node.sim.blocks import SimBlock

__all__ = ["Host", "SimNode", "url_of"]

MAINTAIN_US = round(MAINTAIN_EVERY_S * US_PER_S)
RETRY_WINDOW_US = 20 * US_PER_MS
"""``Sync._fetch_loop`` sleeps 20 ms when its window is full."""
_AUTHENTICATED = ("block", "headers", "fetch", "peers")


def url_of(index: int) -> str:
    return f"http://n{index:05d}.sim"


def index_of(url: str) -> int:
    return int(url[8:13])


class Host(Protocol):
    """What a simulated node needs of the simulation around it."""

    queue: EventQueue
    fabric: Fabric
    params: ConsensusParams
    genesis: Header
    costs: Costs
    blocks: dict[str, SimBlock]

    def held(self, node: int, block_hash: str) -> None:
        """The node stored the block's body (the reach metric's clock)."""


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
        self.sync_busy = False
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

    def _call(
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

        self._call(peer, "peers", None, Sizes.HTTP, answered, lambda _: None)

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

        self._call(peer, "block", block, Sizes.HTTP + block.size, answered, lost)

    def mined(self, block: SimBlock) -> None:
        """Our own block: the same chain path as a pushed one."""
        result = self.chain.process_block(block.header, self.now_ms())
        if result.outcome is BlockOutcome.ACCEPTED:
            self.sim.held(self.index, block.hash)
            self.relay(result.connected)

    # --- sync (``node.p2p.sync.SyncRunner``) ---------------------------------------------

    def _start_sync(self, action: Sync) -> None:
        if self.sync_busy:
            return
        peer = self.core.peer(action.node_id)
        if peer is not None:
            self.sync_busy = True
            self._request_headers(peer, self.chain.locator(), None)

    def _request_headers(self, peer: Peer, locator: list[str], last: Entry | None) -> None:
        def answered(headers: Any) -> None:
            if not isinstance(headers, list):
                self.failed(peer)
                self._end_sync()
                return
            self.work(self.sim.costs.small_us, lambda: self._headers_arrived(peer, headers, last))

        def failed(_: Any) -> None:
            self.failed(peer)
            self._end_sync()

        size = Sizes.HTTP + 40 + Sizes.LOCATOR_HASH * len(locator)
        self._call(peer, "headers", locator, size, answered, failed)

    def _headers_arrived(self, peer: Peer, headers: list[Header], last: Entry | None) -> None:
        """A header that does not connect, or is invalid, is misbehaviour; a too-new one
        stops the run."""
        accepted, failure = self.chain.process_headers(headers, self.now_ms())
        fault = header_fault(headers, accepted, failure)
        if fault is not None:
            self.misbehaved(peer, fault)
            self._end_sync()
            return
        if accepted:
            last = self.chain.tree.get(headers[accepted - 1].hash)
        locator = next_locator(len(headers), headers[-1].hash if headers else None)
        if failure is None and locator is not None:
            self._request_headers(peer, locator, last)
            return
        self._download(peer, last)

    def _download(self, first: Peer, target: Entry | None) -> None:
        """The bodies of the best chain the peer announced, from every connected peer at
        least as high, ``plan.slots`` requests each."""
        target = sync_target(target, self.chain.tree.get(first.best_hash or ""))
        needed = self.chain.missing_bodies(target) if target is not None else []
        if not needed:
            self._end_sync()
            return
        self.syncing = True
        plan = BlockDownload(needed)
        peers = download_peers(first, self.core.peers())
        workers = [len(peers) * plan.slots]
        for peer in peers:
            for _ in range(plan.slots):
                self._fetch(peer, plan, workers)

    def _fetch(self, peer: Peer, plan: BlockDownload, workers: list[int]) -> None:
        """One download slot (``Sync._fetch_loop``)."""
        if plan.finished or not peer.connected:
            self._worker_done(workers)
            return
        hashes = plan.next_for(peer.url)
        if not hashes:
            self.sim.queue.at(
                self.now + RETRY_WINDOW_US, lambda _: self._fetch(peer, plan, workers)
            )
            return

        def answered(run: Any) -> None:
            if not isinstance(run, list):
                failed()
                return
            run_arrived(plan, hashes, [(b.hash, b.size) for b in run])
            for block in run:
                peer.known_blocks.add(block.hash)
            if not run:
                self._worker_done(workers)
                return
            cost = sum(self.sim.costs.block(b.txs) for b in run)
            self.work(cost, lambda: self._connect_run(run, plan))
            self._fetch(peer, plan, workers)

        def failed(_: Any = None) -> None:
            plan.failed(hashes)
            self.failed(peer)
            self._worker_done(workers)

        size = Sizes.HTTP + Sizes.FETCH_HASH * len(hashes)
        self._call(peer, "fetch", hashes, size, answered, failed)

    def _connect_run(self, run: list[SimBlock], plan: BlockDownload) -> None:
        for position, block in enumerate(run):
            result = self.chain.process_block(block.header, self.now_ms())
            if result.outcome is BlockOutcome.REJECTED:
                plan.failed(b.hash for b in run[position:])
                return
            if result.outcome is BlockOutcome.ACCEPTED:
                self.sim.held(self.index, block.hash)
            plan.received(block.hash)

    def _worker_done(self, workers: list[int]) -> None:
        workers[0] -= 1
        if workers[0] == 0:
            self._end_sync()

    def _end_sync(self) -> None:
        self.syncing = False
        self.sync_busy = False


def _call(then: Callable[[], None]) -> None:
    then()
