"""The peer table: who we know, who we are connected to, and who misbehaved.

Pure state with the clock passed in: every decision (whom to dial next, when to retry,
when to forget an address, whether a sender is discouraged) is a method that tests can
drive with any ``now``. The p2p service around it does the HTTP and the persistence.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from enum import StrEnum

__all__ = ["Direction", "KnownSet", "Peer", "PeerTable"]

DISCOURAGE_MS = 10 * 60_000
"""How long a misbehaving peer is refused (Bitcoin discourages until restart; ours expires)."""
MAX_BACKOFF_MS = 5 * 60_000
FORGET_AFTER_FAILURES = 10
"""An address that failed this many times in a row, never answering, is forgotten."""
MAX_ADDRESSES = 1000


class Direction(StrEnum):
    OUTBOUND = "outbound"
    INBOUND = "inbound"


class KnownSet:
    """A bounded set of hashes a peer is known to have (oldest forgotten first)."""

    def __init__(self, capacity: int = 50_000) -> None:
        self.capacity = capacity
        self._items: OrderedDict[str, None] = OrderedDict()

    def add(self, item: str) -> None:
        self._items[item] = None
        self._items.move_to_end(item)
        if len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def __contains__(self, item: object) -> bool:
        return item in self._items

    def __len__(self) -> int:
        return len(self._items)


@dataclass(eq=False)
class Peer:
    """One address we know; ``connected`` once a handshake succeeded."""

    url: str
    source: str = "seed"
    node_id: str | None = None
    direction: Direction = Direction.OUTBOUND
    connected: bool = False
    best_hash: str | None = None
    height: int | None = None
    chain_work: int = 0
    last_seen: int | None = None
    failures: int = 0
    next_try: int = 0
    discouraged_until: int = 0
    reason: str | None = None
    token: str | None = None
    """Our session at this peer (issued by it when we said hello), while connected."""
    known_blocks: KnownSet = field(default_factory=KnownSet, repr=False)
    known_txs: KnownSet = field(default_factory=KnownSet, repr=False)

    def discouraged(self, now: int) -> bool:
        return self.discouraged_until > now

    def view(self, now: int) -> dict[str, object]:
        """What ``GET /v1/peers`` shows of this peer."""
        return {
            "url": self.url,
            "node_id": self.node_id,
            "direction": self.direction.value,
            "height": self.height,
            "best_hash": self.best_hash,
            "last_seen": self.last_seen,
            "discouraged": self.discouraged(now),
            "reason": self.reason,
        }


class PeerTable:
    def __init__(self, *, self_url: str, max_outbound: int, max_inbound: int) -> None:
        self.self_url = self_url
        self.max_outbound = max_outbound
        self.max_inbound = max_inbound
        self._peers: dict[str, Peer] = {}
        self.forgotten: list[str] = []
        """Addresses dropped to make room, for the caller to delete from its store too."""

    def __contains__(self, url: object) -> bool:
        return url in self._peers

    def __len__(self) -> int:
        return len(self._peers)

    def get(self, url: str) -> Peer | None:
        return self._peers.get(url)

    def all(self) -> list[Peer]:
        return list(self._peers.values())

    def connected(self) -> list[Peer]:
        return [p for p in self._peers.values() if p.connected]

    def count(self, direction: Direction) -> int:
        return sum(1 for p in self._peers.values() if p.connected and p.direction is direction)

    def learn(self, url: str, *, source: str) -> Peer | None:
        """Remember an address (not our own); returns the peer, new or known.

        The address book holds ``MAX_ADDRESSES``. When it is full a gossiped address is
        refused, but a seed the user names or a peer that connects to us takes the place
        of the least promising address (see ``_make_room``).
        """
        url = url.rstrip("/")
        if url == self.self_url or not url.startswith(("http://", "https://")):
            return None
        peer = self._peers.get(url)
        if peer is None:
            if len(self._peers) >= MAX_ADDRESSES and not (
                source in ("seed", "inbound") and self._make_room()
            ):
                return None
            direction = Direction.INBOUND if source == "inbound" else Direction.OUTBOUND
            peer = self._peers[url] = Peer(url=url, source=source, direction=direction)
        return peer

    def forget(self, url: str) -> None:
        self._peers.pop(url, None)

    def _make_room(self) -> bool:
        """Forget the address that failed most (then the longest unseen), never a seed, a
        connected peer or a discouraged one (its cool-down must be remembered)."""
        candidates = [
            p
            for p in self._peers.values()
            if p.source != "seed" and not p.connected and not p.discouraged_until
        ]
        if not candidates:
            return False
        worst = max(candidates, key=lambda p: (p.failures, -(p.last_seen or 0)))
        del self._peers[worst.url]
        self.forgotten.append(worst.url)
        return True

    # --- connection decisions ------------------------------------------------------------

    def free_outbound(self) -> int:
        return max(self.max_outbound - self.count(Direction.OUTBOUND), 0)

    def to_dial(self, now: int) -> list[Peer]:
        """Addresses to dial now: not connected, not discouraged, retry time passed, and no
        more than the free outbound slots (seeds and least-failed first)."""
        free = self.free_outbound()
        if not free:
            return []
        ready = [
            p
            for p in self._peers.values()
            if not p.connected and not p.discouraged(now) and p.next_try <= now
        ]
        ready.sort(key=lambda p: (p.source != "seed", p.failures, p.url))
        return ready[:free]

    def accept_inbound(self, url: str, now: int) -> Peer | None:
        """An inbound handshake: None if refused (discouraged, or no inbound slot)."""
        peer = self.learn(url, source="inbound")
        if peer is None or peer.discouraged(now):
            return None
        if not peer.connected:
            if self.count(Direction.INBOUND) >= self.max_inbound:
                return None
            peer.direction = Direction.INBOUND
        return peer

    def connected_ok(self, peer: Peer, now: int, *, direction: Direction) -> None:
        if not peer.connected:
            peer.direction = direction
        peer.connected = True
        peer.failures = 0
        peer.next_try = 0
        peer.last_seen = now

    def failed(self, peer: Peer, now: int) -> bool:
        """A call to the peer failed: disconnect and back off. True when it is forgotten."""
        peer.connected = False
        peer.token = None
        peer.failures += 1
        peer.next_try = now + min(1_000 * 2 ** min(peer.failures, 16), MAX_BACKOFF_MS)
        if peer.failures >= FORGET_AFTER_FAILURES and peer.source != "seed":
            self.forget(peer.url)
            return True
        return False

    def discourage(self, peer: Peer, reason: str, now: int) -> None:
        peer.connected = False
        peer.token = None
        peer.discouraged_until = now + DISCOURAGE_MS
        peer.reason = reason
        peer.next_try = peer.discouraged_until

    def good_addresses(self, now: int, limit: int = 100) -> list[str]:
        """What we tell others about: connected first, then recently seen, never discouraged."""
        good = [
            p
            for p in self._peers.values()
            if not p.discouraged(now) and (p.connected or p.last_seen is not None)
        ]
        good.sort(key=lambda p: (not p.connected, -(p.last_seen or 0)))
        return [p.url for p in good[:limit]]
