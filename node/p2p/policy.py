"""Peer-protocol decisions without sockets: whom to punish, and what to fetch from whom.

Misbehaviour (Bitcoin's ``MaybePunishNodeForBlock``, in one place): a peer that sends a
block we reject is discouraged, whatever the rule, because validity is a function of the
block and its ancestors alone. A too-new block is only early, and a block on a low-work
fork is stored, not rejected, so neither is punished. A transaction is punished only
for faults in the transaction itself; a ledger conflict (duplicate, unknown reference,
...) can be an honest race between mempools.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

__all__ = ["BlockDownload", "punishes_tx"]

_TX_FAULTS = frozenset(
    {"bad-signature", "bad-tx-schema", "bad-json", "tx-too-large", "wrong-network", "bad-signer"}
)


def punishes_tx(code: str) -> bool:
    """True when a rejected transaction proves its sender sent bad data."""
    return code in _TX_FAULTS


@dataclass
class BlockDownload:
    """Which block to ask which peer for, within a moving window.

    Blocks are handed out lowest first, and only within ``window`` of the lowest block
    not yet received, so a stalled request cannot make the node buffer an unbounded run
    of later blocks. A failed request goes back to the queue for another peer.
    """

    needed: list[str]
    window: int = 256
    per_peer: int = 8
    _pending: deque[int] = field(init=False)
    _in_flight: dict[int, str] = field(init=False, default_factory=dict)
    _done: set[int] = field(init=False, default_factory=set)
    _low: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self._pending = deque(range(len(self.needed)))

    @property
    def finished(self) -> bool:
        return len(self._done) == len(self.needed)

    def remaining(self) -> int:
        return len(self.needed) - len(self._done)

    def in_flight(self, peer: str) -> int:
        return sum(1 for p in self._in_flight.values() if p == peer)

    def next_for(self, peer: str) -> str | None:
        """The next block for ``peer``, or None (nothing left in the window, or at its cap)."""
        if not self._pending or self.in_flight(peer) >= self.per_peer:
            return None
        index = self._pending[0]
        if index >= self._low + self.window:
            return None
        self._pending.popleft()
        self._in_flight[index] = peer
        return self.needed[index]

    def received(self, block_hash: str) -> None:
        index = self.needed.index(block_hash, self._low)
        self._in_flight.pop(index, None)
        self._done.add(index)
        while self._low in self._done:
            self._low += 1

    def failed(self, block_hash: str) -> None:
        """The request failed: the block goes back to the front for another peer."""
        index = self.needed.index(block_hash, self._low)
        if self._in_flight.pop(index, None) is not None:
            self._pending.appendleft(index)
