"""Headers-first sync of a simulated node, as ``node.p2p.sync.SyncRunner`` runs it: the
headers after our locator from one peer, then the bodies of the best chain it announced
from every connected peer at least as high, ``BlockDownload.slots`` requests each.

The decisions are the node's own (``node.p2p.headersync``: what a run proves, the next
locator, the target chain, whom to ask; ``node.p2p.policy.BlockDownload``: what to ask
whom, within the window); this class only carries them out over the simulated fabric.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from consensus.block import Header
from consensus.chain import Entry
from node.chainstate import BlockOutcome
from node.p2p.headersync import (
    download_peers,
    header_fault,
    next_locator,
    run_arrived,
    sync_target,
)
from node.p2p.peers import Peer
from node.p2p.policy import BlockDownload
from node.sim.events import US_PER_MS
from node.sim.wire import Sizes

if TYPE_CHECKING:
    from node.p2p.protocol import PeerProtocol
    from node.sim.blocks import SimBlock
    from node.sim.chainport import SimChain
    from node.sim.wire import Host

__all__ = ["SimSync", "Syncing"]

RETRY_WINDOW_US = 20 * US_PER_MS
"""``SyncRunner`` sleeps 20 ms when a peer's window is full."""


class Syncing(Protocol):
    """What a sync needs of its node (``node.sim.peer.SimNode``)."""

    index: int
    sim: Host
    chain: SimChain
    core: PeerProtocol
    syncing: bool

    @property
    def now(self) -> int: ...

    def now_ms(self) -> int: ...

    def work(self, cost_us: int, then: Callable[[], None]) -> None: ...

    def failed(self, peer: Peer) -> None: ...

    def misbehaved(self, peer: Peer, reason: str) -> None: ...

    def call(
        self,
        peer: Peer,
        kind: str,
        payload: Any,
        size: int,
        on_answer: Callable[[Any], None],
        on_fail: Callable[[Any], None],
    ) -> None: ...


class SimSync:
    """One sync at a time for ``node`` (``busy`` while one runs)."""

    def __init__(self, node: Syncing) -> None:
        self.node = node
        self.busy = False

    def start(self, peer: Peer) -> None:
        self.busy = True
        self._request_headers(peer, self.node.chain.locator(), None)

    def _request_headers(self, peer: Peer, locator: list[str], last: Entry | None) -> None:
        def answered(headers: Any) -> None:
            if not isinstance(headers, list):
                self.node.failed(peer)
                self._end_sync()
                return
            self.node.work(
                self.node.sim.costs.small_us, lambda: self._headers_arrived(peer, headers, last)
            )

        def failed(_: Any) -> None:
            self.node.failed(peer)
            self._end_sync()

        size = Sizes.HTTP + 40 + Sizes.LOCATOR_HASH * len(locator)
        self.node.call(peer, "headers", locator, size, answered, failed)

    def _headers_arrived(self, peer: Peer, headers: list[Header], last: Entry | None) -> None:
        """A header that does not connect, or is invalid, is misbehaviour; a too-new one
        stops the run."""
        accepted, failure = self.node.chain.process_headers(headers, self.node.now_ms())
        fault = header_fault(headers, accepted, failure)
        if fault is not None:
            self.node.misbehaved(peer, fault)
            self._end_sync()
            return
        if accepted:
            last = self.node.chain.tree.get(headers[accepted - 1].hash)
        locator = next_locator(len(headers), headers[-1].hash if headers else None)
        if failure is None and locator is not None:
            self._request_headers(peer, locator, last)
            return
        self._download(peer, last)

    def _download(self, first: Peer, target: Entry | None) -> None:
        """The bodies of the best chain the peer announced, from every connected peer at
        least as high, ``plan.slots`` requests each."""
        target = sync_target(target, self.node.chain.tree.get(first.best_hash or ""))
        needed = self.node.chain.missing_bodies(target) if target is not None else []
        if not needed:
            self._end_sync()
            return
        self.node.syncing = True
        plan = BlockDownload(needed)
        peers = download_peers(first, self.node.core.peers())
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
            self.node.sim.queue.at(
                self.node.now + RETRY_WINDOW_US, lambda _: self._fetch(peer, plan, workers)
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
            cost = sum(self.node.sim.costs.block(b.txs) for b in run)
            self.node.work(cost, lambda: self._connect_run(run, plan))
            self._fetch(peer, plan, workers)

        def failed(_: Any = None) -> None:
            plan.failed(hashes)
            self.node.failed(peer)
            self._worker_done(workers)

        size = Sizes.HTTP + Sizes.FETCH_HASH * len(hashes)
        self.node.call(peer, "fetch", hashes, size, answered, failed)

    def _connect_run(self, run: list[SimBlock], plan: BlockDownload) -> None:
        for position, block in enumerate(run):
            result = self.node.chain.process_block(block.header, self.node.now_ms())
            if result.outcome is BlockOutcome.REJECTED:
                plan.failed(b.hash for b in run[position:])
                return
            if result.outcome is BlockOutcome.ACCEPTED:
                self.node.sim.held(self.node.index, block.hash)
            plan.received(block.hash)

    def _worker_done(self, workers: list[int]) -> None:
        workers[0] -= 1
        if workers[0] == 0:
            self._end_sync()

    def _end_sync(self) -> None:
        self.node.syncing = False
        self.busy = False
