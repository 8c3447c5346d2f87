"""One simulated node: the node's peer table, download window and fork choice, driven by
simulated messages instead of HTTP.

The decisions are the node's own pure pieces: ``node.p2p.peers.PeerTable`` (whom to
dial, backoff, discouragement), ``KnownSet`` seen-sets per peer, ``node.p2p.policy.
BlockDownload`` (what to fetch from whom, in a window) and ``consensus.chain.BlockTree``
(fork choice, locators, headers after a locator). The order of events follows
``node.p2p.service``, ``gossip`` and ``sync``: a hello both ways and a sync when the
peer claims more work; each new active block pushed once to every connected peer not
known to have it, by a per-peer sender with one request in flight, and not while
syncing; a block with an unknown parent starts a headers-first sync with its sender;
maintenance every ``MAINTAIN_EVERY_S`` fills outbound slots, and every
``REFRESH_EVERY_S`` a hello to each peer learns its tip.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from consensus.block import Header
from consensus.errors import BlockNotFound, InvalidBlock
from consensus.params import ConsensusParams
from node.chainstate import BlockOutcome
from node.p2p.peers import Direction, Peer, PeerTable
from node.p2p.policy import BlockDownload
from node.p2p.service import MAINTAIN_EVERY_S, REFRESH_EVERY_S
from node.p2p.sync import MAX_HEADERS
from node.sim.chainport import SimChain
from node.sim.events import US_PER_MS, US_PER_S, EventQueue
from node.sim.wire import Costs, Fabric, Served, Sizes

if TYPE_CHECKING:
    from node.sim.blocks import SimBlock

__all__ = ["Host", "SimNode", "url_of"]

MAINTAIN_US = round(MAINTAIN_EVERY_S * US_PER_S)
REFRESH_US = round(REFRESH_EVERY_S * US_PER_S)
RETRY_WINDOW_US = 20 * US_PER_MS
"""``Sync._fetch_loop`` sleeps 20 ms when its window is full."""


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
    def __init__(self, sim: Host, index: int, max_outbound: int, max_inbound: int) -> None:
        self.sim = sim
        self.index = index
        self.url = url_of(index)
        self.table = PeerTable(
            self_url=self.url, max_outbound=max_outbound, max_inbound=max_inbound
        )
        self.chain = SimChain(sim.params, sim.genesis)
        self.cpu_free_at = 0
        self.syncing = False
        self.sync_busy = False
        self.online = True
        self._senders: dict[str, _Sender] = {}
        self._dialing: set[str] = set()
        self.discouraged: list[tuple[str, str]] = []
        """(peer url, reason) of every discouragement this node made."""

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

    # --- lifecycle ---------------------------------------------------------------------

    def start(self, seeds: list[int], phase_us: int) -> None:
        for seed in seeds:
            peer = self.table.learn(url_of(seed), source="seed")
            if peer is not None:
                peer.source = "seed"
        self.sim.queue.at(self.now + phase_us, self._maintain)
        self.sim.queue.at(self.now + phase_us + REFRESH_US, self._refresh)

    def _maintain(self, _: Any = None) -> None:
        if self.online:
            for peer in self.table.to_dial(self.now // US_PER_MS):
                if peer.url not in self._dialing:
                    self._dial(peer)
        self.sim.queue.at(self.now + MAINTAIN_US, self._maintain)

    def _refresh(self, _: Any = None) -> None:
        if self.online:
            for peer in self.table.connected():
                self._hello(peer, refresh=True)
        self.sim.queue.at(self.now + REFRESH_US, self._refresh)

    # --- handshakes --------------------------------------------------------------------

    def hello_body(self) -> tuple[str, int, int]:
        tip = self.chain.tip
        return (tip.hash, tip.height, tip.chain_work)

    def _dial(self, peer: Peer) -> None:
        self._dialing.add(peer.url)
        self._hello(peer, refresh=False)

    def _hello(self, peer: Peer, *, refresh: bool) -> None:
        def answered(best: Any) -> None:
            self._dialing.discard(peer.url)
            if best is None:  # refused: discouraged there
                self.failed(peer)
                return
            self._note_best(peer, best)
            if refresh:
                peer.last_seen = self.now // US_PER_MS
            else:
                self.table.connected_ok(peer, self.now // US_PER_MS, direction=Direction.OUTBOUND)
                self._senders.setdefault(peer.url, _Sender())
            self._maybe_sync(peer)

        def failed(_: Any) -> None:
            self._dialing.discard(peer.url)
            self.failed(peer)

        self.sim.fabric.request(
            self.index,
            index_of(peer.url),
            "hello",
            self.hello_body(),
            Sizes.HELLO,
            answered,
            failed,
        )

    @staticmethod
    def _note_best(peer: Peer, best: tuple[str, int, int]) -> None:
        peer.best_hash, peer.height, peer.chain_work = best

    def failed(self, peer: Peer) -> None:
        """``P2P.failed``: disconnect, back off, and drop the peer's sender."""
        self.table.failed(peer, self.now // US_PER_MS)
        self._senders.pop(peer.url, None)

    def discourage(self, peer: Peer, reason: str) -> None:
        self.discouraged.append((peer.url, reason))
        self.table.discourage(peer, reason, self.now // US_PER_MS)
        self._senders.pop(peer.url, None)

    # --- serving requests ----------------------------------------------------------------

    def serve(self, kind: str, body: Any, src: int) -> Served:
        costs = self.sim.costs
        peer = self.table.get(url_of(src))
        if peer is not None and peer.discouraged(self.now // US_PER_MS):
            return Served(None, Sizes.ANSWER, costs.small_us)
        if kind == "block":
            return self._on_block(body, peer, src)
        if kind == "hello":
            return self._on_hello(body, src)
        if kind == "headers":
            entries = self.chain.headers_after(body, MAX_HEADERS)
            headers = [self.sim.blocks[e.hash].header for e in entries]
            return Served(headers, Sizes.ANSWER + Sizes.HEADER * len(headers), costs.small_us)
        assert kind == "fetch"
        run: list[SimBlock] = []
        for block_hash in body:  # a prefix of what was asked: what this node holds
            if not self.chain.has_body(block_hash):
                break
            run.append(self.sim.blocks[block_hash])
        size = Sizes.ANSWER + sum(b.size for b in run)
        return Served(run, size, costs.small_us + sum(costs.parse_tx_us * b.txs for b in run))

    def _on_hello(self, best: tuple[str, int, int], src: int) -> Served:
        """``P2P.on_hello``: accept an inbound peer if a slot is free; answer in kind."""
        now_ms = self.now // US_PER_MS
        peer = self.table.accept_inbound(url_of(src), now_ms)
        if peer is not None:
            self._note_best(peer, best)
            self.table.connected_ok(peer, now_ms, direction=Direction.INBOUND)
            self._senders.setdefault(peer.url, _Sender())
            self._maybe_sync(peer)
        return Served(self.hello_body(), Sizes.HELLO, self.sim.costs.small_us)

    def _on_block(self, block: SimBlock, peer: Peer | None, src: int) -> Served:
        """``P2P.on_block``: remember who has it, process it, relay what connected."""
        costs = self.sim.costs
        if peer is not None:
            peer.known_blocks.add(block.hash)
            peer.last_seen = self.now // US_PER_MS
        result = self.chain.process_block(block.header, self.now_ms())
        outcome = result.outcome
        if outcome is BlockOutcome.DUPLICATE:
            return Served(None, Sizes.ANSWER, costs.duplicate(block.txs))
        if outcome is BlockOutcome.REJECTED:
            if peer is not None:
                self.discourage(peer, f"invalid block {block.hash}")
        elif outcome is BlockOutcome.NEED_PARENTS:
            if peer is not None and peer.connected:
                self._maybe_sync(peer, force=True)
            elif peer is None or not peer.connected:
                stranger = self.table.learn(url_of(src), source="inbound")
                if stranger is not None and self.table.free_outbound():
                    self._dial(stranger)
        cost = costs.block(block.txs)
        if outcome is not BlockOutcome.ACCEPTED:
            return Served(None, Sizes.ANSWER, cost)
        connected = result.connected

        def then() -> None:
            self.sim.held(self.index, block.hash)
            self.relay(connected)

        return Served(None, Sizes.ANSWER, cost, then)

    # --- gossip ------------------------------------------------------------------------

    def relay(self, connected: list[Any]) -> None:
        """``Gossip.relay_block``: each block that joined the active chain, to every
        connected peer not known to have it; nothing while syncing."""
        if self.syncing or not connected:
            return
        blocks = self.sim.blocks
        peers = self.table.connected()
        for entry in connected:
            for peer in peers:
                if entry.hash not in peer.known_blocks:
                    peer.known_blocks.add(entry.hash)
                    sender = self._senders.get(peer.url)
                    if sender is not None:
                        sender.queue.append(blocks[entry.hash])
                        if not sender.busy:
                            self._send_next(peer, sender)

    def _send_next(self, peer: Peer, sender: _Sender) -> None:
        if not sender.queue or self._senders.get(peer.url) is not sender:
            sender.busy = False
            return
        sender.busy = True
        block = sender.queue.popleft()

        def answered(_: Any) -> None:
            self._send_next(peer, sender)

        def failed(_: Any) -> None:
            sender.busy = False
            if self._senders.get(peer.url) is sender:
                self.failed(peer)

        self.sim.fabric.request(
            self.index,
            index_of(peer.url),
            "block",
            block,
            Sizes.HTTP + block.size,
            answered,
            failed,
        )

    def mined(self, block: SimBlock) -> None:
        """Our own block: the same path as a pushed one, without a sender."""
        result = self.chain.process_block(block.header, self.now_ms())
        if result.outcome is BlockOutcome.ACCEPTED:
            self.sim.held(self.index, block.hash)
            self.relay(result.connected)

    # --- sync --------------------------------------------------------------------------

    def _maybe_sync(self, peer: Peer, *, force: bool = False) -> None:
        if self.sync_busy or not self.online:
            return
        if force or peer.chain_work > self.chain.tip.chain_work:
            self.sync_busy = True
            self._request_headers(peer, self.chain.locator(), None)

    def _request_headers(self, peer: Peer, locator: list[str], last: Any) -> None:
        def answered(headers: list[Header] | None) -> None:
            if headers is None:
                self._end_sync()
                return
            self.work(self.sim.costs.small_us, lambda: self._headers_arrived(peer, headers, last))

        def failed(_: Any) -> None:
            self.failed(peer)
            self._end_sync()

        size = Sizes.HTTP + 40 + Sizes.LOCATOR_HASH * len(locator)
        self.sim.fabric.request(
            self.index, index_of(peer.url), "headers", locator, size, answered, failed
        )

    def _headers_arrived(self, peer: Peer, headers: list[Header], last: Any) -> None:
        """``Sync._accept_headers``: a header that does not connect, or is invalid, is
        misbehaviour; a too-new one stops the run."""
        accepted, failure = self.chain.process_headers(headers, self.now_ms())
        if isinstance(failure, BlockNotFound):
            self.discourage(peer, "non-connecting headers: unknown parent")
            self._end_sync()
            return
        if isinstance(failure, InvalidBlock):
            self.discourage(peer, f"invalid header: {failure.code}")
            self._end_sync()
            return
        if accepted:
            last = self.chain.tree.get(headers[accepted - 1].hash)
        if failure is None and len(headers) == MAX_HEADERS:
            self._request_headers(peer, [headers[-1].hash], last)
            return
        self._download(peer, last)

    def _download(self, first: Peer, target: Any) -> None:
        """``Sync._download_blocks``: the bodies of the best chain the peer announced, from
        every connected peer at least as high, ``plan.slots`` requests each."""
        announced = self.chain.tree.get(first.best_hash or "")
        if announced is not None and (target is None or announced.chain_work > target.chain_work):
            target = announced
        needed = self.chain.missing_bodies(target) if target is not None else []
        if not needed:
            self._end_sync()
            return
        self.syncing = True
        plan = BlockDownload(needed)
        peers = [first] + [
            p
            for p in self.table.connected()
            if p is not first and (p.height or 0) >= (first.height or 0)
        ]
        workers = [0]
        for peer in peers:
            for _ in range(plan.slots):
                workers[0] += 1
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

        def answered(run: list[SimBlock] | None) -> None:
            if run is None:
                plan.failed(hashes)
                self._worker_done(workers)
                return
            for block in run:
                plan.fetched(block.hash, block.size)
            plan.failed(hashes[len(run) :])
            if not run:
                self._worker_done(workers)
                return
            for block in run:
                peer.known_blocks.add(block.hash)
            cost = sum(self.sim.costs.block(b.txs) for b in run)
            self.work(cost, lambda: self._connect_run(run, plan))
            self._fetch(peer, plan, workers)

        def failed(_: Any) -> None:
            plan.failed(hashes)
            self.failed(peer)
            self._worker_done(workers)

        size = Sizes.HTTP + Sizes.FETCH_HASH * len(hashes)
        self.sim.fabric.request(
            self.index, index_of(peer.url), "fetch", hashes, size, answered, failed
        )

    def _connect_run(self, run: list[SimBlock], plan: BlockDownload) -> None:
        for block in run:
            result = self.chain.process_block(block.header, self.now_ms())
            if result.outcome is BlockOutcome.REJECTED:
                plan.failed(b.hash for b in run[run.index(block) :])
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
