"""The block index in parallel arrays: a few bytes a header, not a Python object each.

Every header known to the tree has an integer id, its position in the arrays below; a
parent always has a lower id than its children. Per id the index keeps the raw 32-byte
hash, height, timestamp, bits, cumulative work (32 bytes, big-endian), status, arrival
sequence, and the ids of its parent, skip ancestor (Bitcoin's ``pskip``), first child
and next sibling: about 105 bytes a header, where one object with its own strings and
integers took over 2,000 (issue 13: 2,599 bytes a block at 30,260 blocks).

A node restarts from its stored active chain in bulk (``ChainColumns``): ids ``0..n-1``
are the heights ``0..n-1`` of that chain, so their parent, skip and ancestors are plain
arithmetic. Hashes are found by bisection in one sorted array of 8-byte values (a hash's
first 4 bytes over its id; the store keeps it ready for a restart); ids added since
(new blocks, side branches) through a dict until there are enough to fold in.

``Entry`` is a view of one id; the index hands out one view per id while any is held,
so entries compare (and hash) by identity as the objects they replace did.
"""

from __future__ import annotations

import weakref
from array import array
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

from consensus.errors import BlockNotFound

__all__ = ["ActiveChain", "BlockIndex", "ChainColumns", "Entry", "Status"]


class Status(StrEnum):
    HEADER = "header"
    """Headers-only: the header is valid, the body has not been received."""
    DATA = "data"
    """The body arrived; not yet known valid or invalid."""
    VALID = "valid"
    """Connected successfully once: fully validated."""
    INVALID = "invalid"
    """Invalid, or a descendant of an invalid block. Never reconsidered."""


_STATUS_OF = tuple(Status)
HEADER, DATA, VALID, INVALID = range(len(_STATUS_OF))
"""One byte a status: its position in ``Status``."""
HAS_DATA = (DATA, VALID)
NONE = -1
"""No id (genesis's parent, a childless entry's first child), or no sequence."""


@dataclass(frozen=True)
class ChainColumns:
    """A stored active chain, heights ``0..n-1`` in order, every block VALID, as columns
    (for a fast restart).

    ``hashes`` and ``chain_work`` are 32 big-endian bytes a block; ``timestamps``,
    ``bits`` and ``sequences`` are arrays (``-1`` for no sequence). ``lookup`` is the
    sorted ``lookup_value`` of the first ``len(lookup)`` heights (the rest are indexed
    as the chain loads).
    """

    hashes: bytes
    timestamps: array[int]
    bits: array[int]
    chain_work: bytes
    sequences: array[int]
    lookup: array[int]

    def __len__(self) -> int:
        return len(self.timestamps)


def lookup_value(raw_hash: bytes, i: int) -> int:
    """What the sorted lookup holds for id ``i``: the hash's first 4 bytes over the id."""
    return int.from_bytes(raw_hash[:4], "big") << 32 | i


def _raw(block_hash: str) -> bytes | None:
    if len(block_hash) != 64:
        return None
    try:
        return bytes.fromhex(block_hash)
    except ValueError:
        return None


class BlockIndex:
    """The arrays, the hash lookup and the views; no rules (``BlockTree`` has those)."""

    def __init__(self) -> None:
        self.hash = bytearray()
        self.height = array("i")
        self.time = array("Q")
        self.bits = array("I")
        self.work = bytearray()
        self.status = bytearray()
        self.sequence = array("q")
        self.parent = array("i")
        self.skip = array("i")
        self.child = array("i")
        self.sibling = array("i")
        self.bulk = 0
        """Ids below this were loaded as one chain: id == height, ancestors by arithmetic."""
        self._sorted = array("Q")
        """``lookup_value`` of the ids indexed by bisection, in order."""
        self._recent: dict[bytes, int] = {}
        self._views: weakref.WeakValueDictionary[int, Entry] = weakref.WeakValueDictionary()
        self.genesis_prev = bytes(32)

    def __len__(self) -> int:
        return len(self.status)

    # --- building ----------------------------------------------------------------------------

    def append(
        self,
        raw_hash: bytes,
        height: int,
        timestamp: int,
        bits: int,
        chain_work: int,
        status: int,
        parent: int,
        skip: int,
    ) -> int:
        new = len(self.status)
        self.hash += raw_hash
        self.height.append(height)
        self.time.append(timestamp)
        self.bits.append(bits)
        self.work += chain_work.to_bytes(32, "big")
        self.status.append(status)
        self.sequence.append(NONE)
        self.parent.append(parent)
        self.skip.append(skip)
        self.child.append(NONE)
        self.sibling.append(NONE)
        if parent != NONE:
            self._link_child(parent, new)
        self._recent[raw_hash] = new
        if len(self._recent) > max(4096, len(self.status) // 8):
            self._fold_recent()
        return new

    def _link_child(self, parent: int, child: int) -> None:
        """Children stay in arrival order (first child, then the sibling chain)."""
        first = self.child[parent]
        if first == NONE:
            self.child[parent] = child
            return
        while self.sibling[first] != NONE:
            first = self.sibling[first]
        self.sibling[first] = child

    def load_chain(self, columns: ChainColumns) -> None:
        """Fill an empty index with a stored chain (ids = heights)."""
        n = len(columns)
        self.hash = bytearray(columns.hashes)
        self.height = array("i", range(n))
        self.time = array("Q", columns.timestamps)
        self.bits = array("I", columns.bits)
        self.work = bytearray(columns.chain_work)
        self.status = bytearray([VALID]) * n
        self.sequence = array("q", columns.sequences)
        self.parent = array("i", range(-1, n - 1))
        self.skip = array("i", bytes(4 * n))
        self.child = array("i", range(1, n + 1))
        self.child[n - 1] = NONE
        self.sibling = array("i", [NONE]) * n
        self.bulk = n
        self._sorted = array("Q", columns.lookup)
        view = memoryview(self.hash)
        self._recent = {bytes(view[32 * i : 32 * i + 32]): i for i in range(len(self._sorted), n)}

    def _fold_recent(self) -> None:
        """Move the dict's ids into the sorted array (every n/8 additions: amortized; the
        sort merges one long sorted run with a short one)."""
        extra = [lookup_value(raw, i) for raw, i in self._recent.items()]
        self._sorted = array("Q", sorted([*self._sorted, *extra]))
        self._recent = {}

    # --- lookups -----------------------------------------------------------------------------

    def find(self, block_hash: str) -> int:
        """The id of a hash, or ``NONE``."""
        raw = _raw(block_hash)
        if raw is None:
            return NONE
        found = self._recent.get(raw)
        if found is not None:
            return found
        values, key = self._sorted, int.from_bytes(raw[:4], "big")
        at = bisect_left(values, key << 32)
        while at < len(values) and values[at] >> 32 == key:
            candidate = values[at] & 0xFFFFFFFF
            if self.hash[32 * candidate : 32 * candidate + 32] == raw:
                return candidate
            at += 1
        return NONE

    def hex(self, i: int) -> str:
        return self.hash[32 * i : 32 * i + 32].hex()

    def chain_work(self, i: int) -> int:
        return int.from_bytes(self.work[32 * i : 32 * i + 32], "big")

    def children(self, i: int) -> Iterator[int]:
        walk = self.child[i]
        while walk != NONE:
            yield walk
            walk = self.sibling[walk]

    def view(self, i: int) -> Entry:
        entry = self._views.get(i)
        if entry is None:
            entry = Entry(self, i)
            self._views[i] = entry
        return entry


class Entry:
    """One header of the tree, read from the index. One view per id while it is held."""

    __slots__ = ("__weakref__", "_index", "id")

    def __init__(self, index: BlockIndex, i: int) -> None:
        self._index = index
        self.id = i

    @property
    def index(self) -> BlockIndex:
        """The index this entry is a view of."""
        return self._index

    def __repr__(self) -> str:
        return f"Entry(hash={self.hash!r}, height={self.height}, status={self.status.value!r})"

    @property
    def hash(self) -> str:
        return self._index.hex(self.id)

    @property
    def prev_hash(self) -> str:
        parent = self._index.parent[self.id]
        return self._index.genesis_prev.hex() if parent == NONE else self._index.hex(parent)

    @property
    def height(self) -> int:
        return self._index.height[self.id]

    @property
    def timestamp(self) -> int:
        return self._index.time[self.id]

    @property
    def bits(self) -> int:
        return self._index.bits[self.id]

    @property
    def chain_work(self) -> int:
        """Cumulative work from genesis up to and including this block."""
        return self._index.chain_work(self.id)

    @property
    def work(self) -> int:
        """This block's work, ``2**256 // (target + 1)``."""
        parent = self._index.parent[self.id]
        below = 0 if parent == NONE else self._index.chain_work(parent)
        return self.chain_work - below

    @property
    def status(self) -> Status:
        return _STATUS_OF[self._index.status[self.id]]

    @property
    def sequence(self) -> int | None:
        """The order in which the body arrived (genesis 0); ``None`` while headers-only."""
        value = self._index.sequence[self.id]
        return None if value == NONE else value

    @property
    def parent(self) -> Entry | None:
        parent = self._index.parent[self.id]
        return None if parent == NONE else self._index.view(parent)

    @property
    def children(self) -> list[Entry]:
        return [self._index.view(c) for c in self._index.children(self.id)]


class ActiveChain:
    """The active chain as an array of ids indexed by height (Bitcoin's CChain)."""

    def __init__(self, tip: Entry) -> None:
        self._index = tip.index
        self._chain = array("i", range(self._index.bulk))  # a chain; set_tip trims it
        self.set_tip(tip)

    @property
    def tip(self) -> Entry:
        return self._index.view(self._chain[-1])

    @property
    def height(self) -> int:
        return len(self._chain) - 1

    def __len__(self) -> int:
        return len(self._chain)

    def __getitem__(self, height: int) -> Entry:
        if not 0 <= height < len(self._chain):
            raise BlockNotFound(f"no active block at height {height}")
        return self._index.view(self._chain[height])

    def __iter__(self) -> Iterator[Entry]:
        return (self._index.view(i) for i in self._chain)

    def contains(self, entry: Entry) -> bool:
        return self.contains_id(entry.id)

    def contains_id(self, i: int) -> bool:
        height = self._index.height[i]
        return height < len(self._chain) and self._chain[height] == i

    def entries(self, start: int, stop: int) -> list[Entry]:
        """Active entries with ``start <= height < stop`` (clipped to the chain; start >= 0)."""
        return [self._index.view(i) for i in self._chain[start:stop]]

    def set_tip(self, tip: Entry) -> None:
        """Rewind or extend to ``tip`` (of this chain's index); costs only the heights that
        change."""
        if tip.index is not self._index:
            raise ValueError("the tip belongs to another block index")
        chain, index = self._chain, self._index
        missing: list[int] = []
        walk = tip.id
        while walk != NONE and not self.contains_id(walk):
            missing.append(walk)
            walk = index.parent[walk]
        del chain[0 if walk == NONE else index.height[walk] + 1 :]
        chain.extend(reversed(missing))
