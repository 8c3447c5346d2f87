"""Peer-protocol decisions without sockets: whom to punish, and what to fetch from whom.

Misbehaviour (Bitcoin's ``MaybePunishNodeForBlock``, in one place): a peer that sends a
block we reject is discouraged, whatever the rule, because validity is a function of the
block and its ancestors alone. A too-new block is only early, and a block on a low-work
fork is stored, not rejected, so neither is punished. A transaction is punished only
for faults in the transaction itself; a ledger conflict (duplicate, unknown reference,
...) can be an honest race between mempools.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["MAX_FETCH_BLOCKS", "BlockDownload", "punishes_tx"]

MAX_FETCH_BLOCKS = 16
"""Blocks in one ``GET /p2p/blocks?hash=..`` request: the most a node asks or serves."""

_TX_FAULTS = frozenset(
    {"bad-signature", "bad-tx-schema", "bad-json", "tx-too-large", "wrong-network", "bad-signer"}
)


def punishes_tx(code: str) -> bool:
    """True when a rejected transaction proves its sender sent bad data."""
    return code in _TX_FAULTS


@dataclass
class BlockDownload:
    """Which blocks to ask which peer for, within a moving window.

    A block is pending, then in flight (asked of one peer), then fetched (here, waiting
    for the chain), then done. Blocks are handed out lowest first, in runs of up to
    ``batch`` (one request each), at most ``per_peer`` in flight per peer, and only
    within ``window`` of the lowest block not yet done, so a stalled request cannot make
    the node buffer an unbounded run of later blocks; nothing more is asked for while
    the fetched blocks waiting for the chain hold ``max_buffered`` bytes. A block whose
    request failed, or that the chain refused, goes back in the queue, ahead of every
    higher block, for another peer.

    The window is wide so that the chain takes big groups (one commit each) while the
    next runs arrive: 256 blocks gave 400 blocks/s in the join benchmark, 512 gave 490.
    It holds four of the chain's largest groups, so that runs waiting to fill one
    (``node.daemon.SYNC_LINGER_S``) do not hold up the next requests. ``per_peer``
    counts blocks, not requests: 64 blocks are four requests of ``batch`` (``slots``) a
    peer. A request's slot stays taken until its run has been parsed and its signatures
    checked, and with two requests a peer the chain worker waited for blocks.
    """

    needed: list[str]
    window: int = 2048
    max_buffered: int = 64 << 20
    per_peer: int = 64
    batch: int = MAX_FETCH_BLOCKS
    _pending: list[int] = field(init=False)
    """A heap of block indices: whatever comes back, the lowest goes out first."""
    _index: dict[str, int] = field(init=False)
    _in_flight: dict[int, str] = field(init=False, default_factory=dict)
    _per_peer: Counter[str] = field(init=False, default_factory=Counter)
    _fetched: dict[int, int] = field(init=False, default_factory=dict)
    """Fetched blocks waiting for the chain, and their sizes."""
    _buffered: int = field(init=False, default=0)
    _done: set[int] = field(init=False, default_factory=set)
    _low: int = field(init=False, default=0)
    _abandoned: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        self._pending = list(range(len(self.needed)))  # sorted, so already a heap
        self._index = {block_hash: i for i, block_hash in enumerate(self.needed)}

    @property
    def finished(self) -> bool:
        return self._abandoned or len(self._done) == len(self.needed)

    @property
    def slots(self) -> int:
        """Requests a peer can have in flight at once."""
        return max(1, self.per_peer // self.batch)

    def remaining(self) -> int:
        return len(self.needed) - len(self._done)

    def next_for(self, peer: str) -> list[str]:
        """The next run for ``peer``: empty when nothing is left in the window, or the peer
        is at its cap."""
        room = min(self.batch, self.per_peer - self._per_peer[peer])
        if self._buffered >= self.max_buffered:
            room = 0
        run: list[str] = []
        while len(run) < room and self._pending and not self._abandoned:
            index = self._pending[0]
            if index >= self._low + self.window:
                break
            heapq.heappop(self._pending)
            self._in_flight[index] = peer
            run.append(self.needed[index])
        self._per_peer[peer] += len(run)
        return run

    def fetched(self, block_hash: str, size: int) -> None:
        """It arrived (``size`` bytes): the peer's slot is free again; the chain is next."""
        index = self._index[block_hash]
        if self._release(index):
            self._fetched[index] = size
            self._buffered += size

    def received(self, block_hash: str) -> None:
        """The chain has processed the block."""
        index = self._index[block_hash]
        self._release(index)
        self._buffered -= self._fetched.pop(index, 0)
        self._done.add(index)
        while self._low in self._done:
            self._low += 1

    def failed(self, hashes: Iterable[str]) -> None:
        """Those requests failed, or the chain refused the block: back in the queue, to go
        out again before any higher block."""
        for index in map(self._index.__getitem__, hashes):
            if self._release(index) or index in self._fetched:
                self._buffered -= self._fetched.pop(index, 0)
                heapq.heappush(self._pending, index)

    def abandon(self) -> None:
        """Stop: nothing more is handed out and the download counts as finished."""
        self._abandoned = True

    def _release(self, index: int) -> bool:
        peer = self._in_flight.pop(index, None)
        if peer is None:
            return False
        self._per_peer[peer] -= 1
        return True
