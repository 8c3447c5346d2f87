"""The block tree and the fork-choice rule (Bitcoin's CBlockIndex/CChain ideas, small).

Fork choice: the best chain is the one whose tip has the most cumulative work, among
chains whose every block has its body (status DATA or VALID) and none is INVALID. On
equal work the current tip stays; otherwise the tip whose body arrived first (lowest
``sequence``) wins. A block found invalid is remembered forever, and so is every
descendant: a header that builds on one is recorded as INVALID and refused.

The candidates are kept incrementally (Bitcoin's ``setBlockIndexCandidates`` with
``mapBlocksUnlinked``): a block is *available* when it and all its ancestors have bodies
and none is invalid; the *frontier* is the available blocks with no available child.
Every block carries positive work, so the most-work available block is on the frontier,
and a heap ordered by (most work, first received) finds it without a scan.

Skip pointers (Bitcoin's ``pskip``) make ``ancestor`` O(log n), so locators and fork
points stay cheap on a long chain; on a chain loaded in bulk at a restart it is O(1).
The headers live in ``consensus.blockindex`` (parallel arrays, about 105 bytes a header).
The tree does no I/O: the node mirrors each change to its store.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from typing import TYPE_CHECKING

from consensus.blockindex import (
    DATA,
    HAS_DATA,
    HEADER,
    INVALID,
    NONE,
    VALID,
    ActiveChain,
    BlockIndex,
    ChainColumns,
    Entry,
    Status,
)
from consensus.errors import BlockNotFound, InvalidBlock

if TYPE_CHECKING:
    from consensus.block import Header

__all__ = ["ActiveChain", "BlockTree", "ChainColumns", "Entry", "Status"]


def _invert_lowest_one(n: int) -> int:
    return n & (n - 1)


def _skip_height(height: int) -> int:
    """Bitcoin's GetSkipHeight: any height that is strictly lower, spread so walks are short."""
    if height < 2:
        return 0
    if height & 1:
        return _invert_lowest_one(_invert_lowest_one(height - 1)) + 1
    return _invert_lowest_one(height)


def _walk_to(index: BlockIndex, i: int, height: int) -> int:
    """Bitcoin's GetAncestor for 0 <= height <= the height of id ``i``; on the bulk-loaded
    chain the ancestor's id is its height."""
    walk = i
    heights, skips, parents, bulk = index.height, index.skip, index.parent, index.bulk
    while walk >= bulk and heights[walk] > height:
        walk_height = heights[walk]
        skip_h = _skip_height(walk_height)
        skip_prev_h = _skip_height(walk_height - 1)
        if skip_h == height or (
            skip_h > height and not (skip_prev_h < skip_h - 2 and skip_prev_h >= height)
        ):
            walk = skips[walk]
        else:
            walk = parents[walk]
    return height if walk < bulk else walk


class BlockTree:
    """Every known header, its status, and the fork choice over them."""

    def __init__(self, genesis: Header, genesis_work: int) -> None:
        if genesis.height != 0:
            raise ValueError(f"genesis must have height 0, not {genesis.height}")
        _check_work(genesis_work)
        index = BlockIndex()
        index.genesis_prev = bytes.fromhex(genesis.prev_hash)
        root = index.append(
            bytes.fromhex(genesis.hash),
            0,
            genesis.timestamp,
            genesis.bits,
            genesis_work,
            VALID,
            NONE,
            NONE,
        )
        index.sequence[root] = 0
        index.bulk = 1
        self._start(index)

    @classmethod
    def from_chain(cls, genesis: Header, genesis_work: int, chain: ChainColumns) -> BlockTree:
        """The tree of a stored active chain (heights ``0..n-1``, every block VALID), loaded
        in bulk; side branches are added after with ``add_header`` and the ``set_*``."""
        n = len(chain)
        sizes = (len(chain.hashes), len(chain.chain_work), len(chain.bits), len(chain.sequences))
        if n < 1 or sizes != (32 * n, 32 * n, n, n) or len(chain.lookup) > n:
            raise ValueError(f"chain columns of {n} blocks have sizes {sizes}")
        if chain.hashes[:32].hex() != genesis.hash:
            raise ValueError("the chain must start at this genesis")
        if int.from_bytes(chain.chain_work[:32], "big") != genesis_work:
            raise ValueError("the chain's genesis work differs")
        tree = cls.__new__(cls)
        index = BlockIndex()
        index.genesis_prev = bytes.fromhex(genesis.prev_hash)
        index.load_chain(chain)
        tree._start(index)
        return tree

    def _start(self, index: BlockIndex) -> None:
        self._index = index
        tip = len(index) - 1
        self._leaves: set[int] = {tip}
        self._available_extra: set[int] = set()
        """Available entries beyond the bulk chain (which is available while not INVALID)."""
        self._frontier: set[int] = {tip}
        self._heap: list[tuple[int, int, int]] = []
        self._push(tip)
        self._next_sequence = max(index.sequence) + 1
        self._active = ActiveChain(index.view(tip))

    # --- lookups -------------------------------------------------------------------------

    @property
    def genesis(self) -> Entry:
        return self._index.view(0)

    def get(self, block_hash: str) -> Entry | None:
        found = self._index.find(block_hash)
        return None if found == NONE else self._index.view(found)

    def __contains__(self, block_hash: object) -> bool:
        return isinstance(block_hash, str) and self._index.find(block_hash) != NONE

    def __len__(self) -> int:
        return len(self._index)

    def _require(self, block_hash: str) -> int:
        found = self._index.find(block_hash)
        if found == NONE:
            raise BlockNotFound(f"unknown block {block_hash}")
        return found

    def _id(self, entry: Entry) -> int:
        """The id of ``entry`` in this tree. An entry of an earlier tree (the node reloads
        its tree from disk after a storage failure) is found again by its hash."""
        if entry.index is self._index:
            return entry.id
        return self._require(entry.hash)

    def _available(self, i: int) -> bool:
        if i < self._index.bulk:
            return self._index.status[i] != INVALID
        return i in self._available_extra

    # --- changes -------------------------------------------------------------------------

    def add_header(self, header: Header, work: int) -> Entry:
        """Record a header whose own and contextual checks passed; idempotent.

        Raises ``BlockNotFound`` for an unknown parent, ``InvalidBlock("bad-height")``
        (nothing recorded) for a wrong height, ``InvalidBlock("bad-prevblk")`` after
        recording the header as INVALID when its parent is invalid, and
        ``InvalidBlock("duplicate-invalid")`` when the header is already known invalid.
        """
        index = self._index
        known = index.find(header.hash)
        if known != NONE:
            if index.status[known] == INVALID:
                raise InvalidBlock("duplicate-invalid", f"block {header.hash} is known invalid")
            return index.view(known)
        parent = self._require(header.prev_hash)
        _check_work(work)
        if header.height != index.height[parent] + 1:
            raise InvalidBlock("bad-height", f"height {header.height} after {index.height[parent]}")
        invalid = index.status[parent] == INVALID
        new = index.append(
            bytes.fromhex(header.hash),
            header.height,
            header.timestamp,
            header.bits,
            index.chain_work(parent) + work,
            INVALID if invalid else HEADER,
            parent,
            _walk_to(index, parent, _skip_height(header.height)),
        )
        self._leaves.discard(parent)
        self._leaves.add(new)
        if invalid:
            raise InvalidBlock("bad-prevblk", f"parent {index.hex(parent)} is invalid")
        return index.view(new)

    def set_data(self, block_hash: str, sequence: int | None = None) -> Entry:
        """The body arrived: HEADER becomes DATA and takes the next sequence number, or
        ``sequence`` (the one it was given before a restart; later ones come after it)."""
        i = self._require(block_hash)
        if self._index.status[i] == HEADER:
            self._index.status[i] = DATA
            self._receive(i, sequence)
        return self._index.view(i)

    def set_valid(self, block_hash: str, sequence: int | None = None) -> Entry:
        """The block connected successfully (implies its body arrived; ``sequence`` as
        for ``set_data``)."""
        i = self._require(block_hash)
        status = self._index.status
        if status[i] == INVALID:
            raise ValueError(f"block {block_hash} is invalid and stays invalid")
        was_header = status[i] == HEADER
        status[i] = VALID
        if was_header:
            self._receive(i, sequence)
        return self._index.view(i)

    def set_invalid(self, block_hash: str) -> Entry:
        """Mark the block and every descendant INVALID, for good."""
        index = self._index
        i = self._require(block_hash)
        parent = index.parent[i]
        if parent == NONE:
            raise ValueError("the genesis block cannot be invalid")
        if index.status[i] == INVALID:
            return index.view(i)  # its descendants are invalid already
        stack = [i]
        while stack:
            walk = stack.pop()
            index.status[walk] = INVALID
            self._available_extra.discard(walk)
            self._frontier.discard(walk)
            # An invalid child's subtree was marked when it was (or on add_header).
            stack.extend(c for c in index.children(walk) if index.status[c] != INVALID)
        if self._available(parent) and not any(self._available(c) for c in index.children(parent)):
            self._add_frontier(parent)
        return index.view(i)

    def _receive(self, i: int, sequence: int | None) -> None:
        """Give a body its sequence number and spread availability down from it."""
        index = self._index
        given = self._next_sequence if sequence is None else sequence
        index.sequence[i] = given
        self._next_sequence = max(self._next_sequence, given + 1)
        if not self._available(index.parent[i]):  # genesis is never HEADER: a parent
            return
        stack = [i]
        while stack:
            walk = stack.pop()
            self._available_extra.add(walk)
            self._frontier.discard(index.parent[walk])
            self._add_frontier(walk)
            stack.extend(c for c in index.children(walk) if index.status[c] in HAS_DATA)

    def _add_frontier(self, i: int) -> None:
        self._frontier.add(i)
        self._push(i)
        if len(self._heap) > 2 * len(self._frontier) + 64:
            # Drop stale heap items so the heap stays proportional to the frontier.
            self._heap = []
            for each in self._frontier:
                self._push(each)

    def _push(self, i: int) -> None:
        sequence = self._index.sequence[i]
        assert sequence != NONE
        heapq.heappush(self._heap, (-self._index.chain_work(i), sequence, i))

    # --- fork choice ---------------------------------------------------------------------

    def best_candidate(self, current_tip: Entry) -> Entry:
        """The tip with the most work among fully available chains.

        On a tie the current tip stays (if it is still a candidate); otherwise the tip
        whose body arrived first wins.
        """
        heap = self._heap
        while heap[0][2] not in self._frontier:
            heapq.heappop(heap)
        neg_work, _, best = heap[0]
        current = self._id(current_tip)
        if self._index.chain_work(current) == -neg_work and current in self._frontier:
            return self._index.view(current)
        return self._index.view(best)

    def is_candidate(self, entry: Entry) -> bool:
        """True when the entry and all its ancestors have bodies and none is invalid."""
        return self._available(self._id(entry))

    def ancestor(self, entry: Entry, height: int) -> Entry:
        """The ancestor of ``entry`` at ``height`` (``entry`` itself at its own height).

        ``ValueError`` for a negative height, ``BlockNotFound`` above the entry.
        """
        if height < 0:
            raise ValueError(f"negative height {height}")
        if height > entry.height:
            raise BlockNotFound(f"no ancestor at {height} of a block at {entry.height}")
        return self._index.view(_walk_to(self._index, self._id(entry), height))

    def fork_point(self, a: Entry, b: Entry) -> Entry:
        """The last common ancestor of ``a`` and ``b``."""
        return self._index.view(self._fork_id(self._id(a), self._id(b)))

    def _fork_id(self, a: int, b: int) -> int:
        index = self._index
        height = min(index.height[a], index.height[b])
        a, b = _walk_to(index, a, height), _walk_to(index, b, height)
        while a != b:  # (two ids of the bulk chain at one height are one id)
            a, b = index.parent[a], index.parent[b]
            assert NONE not in (a, b)  # one root: they meet
        return a

    def reorg_path(self, old_tip: Entry, new_tip: Entry) -> tuple[list[Entry], list[Entry]]:
        """(blocks to disconnect, old tip first; blocks to connect, lowest first)."""
        old, new = self._id(old_tip), self._id(new_tip)
        fork = self._fork_id(old, new)
        return self._down_to(old, fork), self._down_to(new, fork)[::-1]

    def _down_to(self, tip: int, stop: int) -> list[Entry]:
        """Entries from ``tip`` down to, but excluding, its ancestor ``stop``."""
        path: list[Entry] = []
        walk = tip
        while walk != stop:
            path.append(self._index.view(walk))
            walk = self._index.parent[walk]
        return path

    def median_time_past(self, entry: Entry, span: int = 11) -> int:
        """Median timestamp of ``entry`` and up to ``span - 1`` ancestors (GetMedianTimePast)."""
        if span < 1:
            raise ValueError(f"span must be positive, not {span}")
        index = self._index
        walk = self._id(entry)
        if walk < index.bulk:  # ids of the bulk chain are heights: a slice
            times = index.time[max(0, walk - span + 1) : walk + 1].tolist()
            times.sort()
            return times[len(times) // 2]
        times = []
        while walk != NONE and len(times) < span:
            times.append(index.time[walk])
            walk = index.parent[walk]
        times.sort()
        return times[len(times) // 2]

    def tips(self) -> list[Entry]:
        """Every leaf (an entry without children), most work first."""
        leaves = [self._index.view(i) for i in self._leaves]
        leaves.sort(key=lambda e: (-e.chain_work, e.hash))
        return leaves

    # --- sync ----------------------------------------------------------------------------

    def locator(self, entry: Entry) -> list[str]:
        """Block locator (Bitcoin's LocatorEntries): the entry and the blocks just below it
        one by one (11 steps of 1), then steps doubling from 2, and always genesis last."""
        index = self._index
        hashes: list[str] = []
        step = 1
        walk = self._id(entry)
        while True:
            hashes.append(index.hex(walk))
            height = index.height[walk]
            if height == 0:
                return hashes
            walk = _walk_to(index, walk, max(height - step, 0))
            if len(hashes) > 10:
                step *= 2

    def headers_after_locator(
        self, active_tip: Entry, locator: Sequence[str], limit: int
    ) -> list[Entry]:
        """Up to ``limit`` active-chain entries after the first locator hash we share.

        A locator hash that extends our tip means the asker is ahead: nothing to send.
        With no hash in common, the answer starts after genesis.
        """
        index, active = self._index, self._active
        active.set_tip(index.view(self._id(active_tip)))
        fork_height = 0
        for block_hash in locator:
            found = index.find(block_hash)
            if found == NONE:
                continue
            if active.contains_id(found):
                fork_height = index.height[found]
                break
            if (
                index.height[found] > active.height
                and _walk_to(index, found, active.height) == active.tip.id
            ):
                fork_height = active.height
                break
        return active.entries(fork_height + 1, fork_height + 1 + limit)


def _check_work(work: int) -> None:
    # Every block's work is 2**256 // (target + 1) >= 1; positive work keeps the best
    # candidate on the frontier (a child always has more chain work than its parent).
    if work < 1:
        raise ValueError(f"block work must be positive, not {work}")
