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
points stay cheap on a long chain. The tree does no I/O: the node mirrors each change to
its store.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from consensus.errors import BlockNotFound, InvalidBlock

if TYPE_CHECKING:
    from consensus.block import Header

__all__ = ["ActiveChain", "BlockTree", "Entry", "Status"]


class Status(StrEnum):
    HEADER = "header"
    """Headers-only: the header is valid, the body has not been received."""
    DATA = "data"
    """The body arrived; not yet known valid or invalid."""
    VALID = "valid"
    """Connected successfully once: fully validated."""
    INVALID = "invalid"
    """Invalid, or a descendant of an invalid block. Never reconsidered."""


_HAS_DATA = (Status.DATA, Status.VALID)


@dataclass(slots=True, eq=False)
class Entry:
    """One header in the tree. Entries compare by identity: one object per hash."""

    hash: str
    prev_hash: str
    height: int
    timestamp: int
    bits: int
    work: int
    """This block's work, ``2**256 // (target + 1)``."""
    chain_work: int
    """Cumulative work from genesis up to and including this block."""
    status: Status
    sequence: int | None
    """The order in which the body arrived (genesis 0); ``None`` while headers-only."""
    parent: Entry | None = field(default=None, repr=False)
    children: list[Entry] = field(default_factory=list, repr=False)
    skip: Entry | None = field(default=None, repr=False)
    """An ancestor further back (Bitcoin's ``pskip``), for O(log n) ``ancestor``."""


def _invert_lowest_one(n: int) -> int:
    return n & (n - 1)


def _skip_height(height: int) -> int:
    """Bitcoin's GetSkipHeight: any height that is strictly lower, spread so walks are short."""
    if height < 2:
        return 0
    if height & 1:
        return _invert_lowest_one(_invert_lowest_one(height - 1)) + 1
    return _invert_lowest_one(height)


def _walk_to(entry: Entry, height: int) -> Entry:
    """Bitcoin's GetAncestor for 0 <= height <= entry.height."""
    walk = entry
    while walk.height > height:
        skip_h = _skip_height(walk.height)
        skip_prev_h = _skip_height(walk.height - 1)
        if walk.skip is not None and (
            skip_h == height
            or (skip_h > height and not (skip_prev_h < skip_h - 2 and skip_prev_h >= height))
        ):
            walk = walk.skip
        else:
            assert walk.parent is not None  # height > 0, so not genesis
            walk = walk.parent
    return walk


class ActiveChain:
    """The active chain as a list indexed by height (Bitcoin's CChain)."""

    def __init__(self, tip: Entry) -> None:
        self._chain: list[Entry] = []
        self.set_tip(tip)

    @property
    def tip(self) -> Entry:
        return self._chain[-1]

    @property
    def height(self) -> int:
        return len(self._chain) - 1

    def __len__(self) -> int:
        return len(self._chain)

    def __getitem__(self, height: int) -> Entry:
        if not 0 <= height < len(self._chain):
            raise BlockNotFound(f"no active block at height {height}")
        return self._chain[height]

    def __iter__(self) -> Iterator[Entry]:
        return iter(self._chain)

    def contains(self, entry: Entry) -> bool:
        return entry.height < len(self._chain) and self._chain[entry.height] is entry

    def entries(self, start: int, stop: int) -> list[Entry]:
        """Active entries with ``start <= height < stop`` (clipped to the chain; start >= 0)."""
        return self._chain[start:stop]

    def set_tip(self, tip: Entry) -> None:
        """Rewind or extend to ``tip``; costs only the heights that change."""
        chain = self._chain
        missing: list[Entry] = []
        walk: Entry | None = tip
        while walk is not None and not (walk.height < len(chain) and chain[walk.height] is walk):
            missing.append(walk)
            walk = walk.parent
        del chain[0 if walk is None else walk.height + 1 :]
        chain.extend(reversed(missing))


class BlockTree:
    """Every known header, its status, and the fork choice over them."""

    def __init__(self, genesis: Header, genesis_work: int) -> None:
        if genesis.height != 0:
            raise ValueError(f"genesis must have height 0, not {genesis.height}")
        _check_work(genesis_work)
        root = Entry(
            hash=genesis.hash,
            prev_hash=genesis.prev_hash,
            height=0,
            timestamp=genesis.timestamp,
            bits=genesis.bits,
            work=genesis_work,
            chain_work=genesis_work,
            status=Status.VALID,
            sequence=0,
        )
        self._genesis = root
        self._entries: dict[str, Entry] = {root.hash: root}
        self._leaves: set[str] = {root.hash}
        self._available: set[str] = {root.hash}
        self._frontier: set[str] = {root.hash}
        self._heap: list[tuple[int, int, str]] = []
        self._push(root)
        self._next_sequence = 1
        self._active = ActiveChain(root)

    # --- lookups -------------------------------------------------------------------------

    @property
    def genesis(self) -> Entry:
        return self._genesis

    def get(self, block_hash: str) -> Entry | None:
        return self._entries.get(block_hash)

    def __contains__(self, block_hash: object) -> bool:
        return block_hash in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def _require(self, block_hash: str) -> Entry:
        entry = self._entries.get(block_hash)
        if entry is None:
            raise BlockNotFound(f"unknown block {block_hash}")
        return entry

    # --- changes -------------------------------------------------------------------------

    def add_header(self, header: Header, work: int) -> Entry:
        """Record a header whose own and contextual checks passed; idempotent.

        Raises ``BlockNotFound`` for an unknown parent, ``InvalidBlock("bad-height")``
        (nothing recorded) for a wrong height, ``InvalidBlock("bad-prevblk")`` after
        recording the header as INVALID when its parent is invalid, and
        ``InvalidBlock("duplicate-invalid")`` when the header is already known invalid.
        """
        known = self._entries.get(header.hash)
        if known is not None:
            if known.status is Status.INVALID:
                raise InvalidBlock("duplicate-invalid", f"block {known.hash} is known invalid")
            return known
        parent = self._require(header.prev_hash)
        _check_work(work)
        if header.height != parent.height + 1:
            raise InvalidBlock("bad-height", f"height {header.height} after {parent.height}")
        invalid = parent.status is Status.INVALID
        entry = Entry(
            hash=header.hash,
            prev_hash=header.prev_hash,
            height=header.height,
            timestamp=header.timestamp,
            bits=header.bits,
            work=work,
            chain_work=parent.chain_work + work,
            status=Status.INVALID if invalid else Status.HEADER,
            sequence=None,
            parent=parent,
        )
        entry.skip = _walk_to(parent, _skip_height(entry.height))
        parent.children.append(entry)
        self._entries[entry.hash] = entry
        self._leaves.discard(parent.hash)
        self._leaves.add(entry.hash)
        if invalid:
            raise InvalidBlock("bad-prevblk", f"parent {parent.hash} is invalid")
        return entry

    def set_data(self, block_hash: str, sequence: int | None = None) -> Entry:
        """The body arrived: HEADER becomes DATA and takes the next sequence number, or
        ``sequence`` (the one it was given before a restart; later ones come after it)."""
        entry = self._require(block_hash)
        if entry.status is Status.HEADER:
            entry.status = Status.DATA
            self._receive(entry, sequence)
        return entry

    def set_valid(self, block_hash: str, sequence: int | None = None) -> Entry:
        """The block connected successfully (implies its body arrived; ``sequence`` as
        for ``set_data``)."""
        entry = self._require(block_hash)
        if entry.status is Status.INVALID:
            raise ValueError(f"block {block_hash} is invalid and stays invalid")
        was_header = entry.status is Status.HEADER
        entry.status = Status.VALID
        if was_header:
            self._receive(entry, sequence)
        return entry

    def set_invalid(self, block_hash: str) -> Entry:
        """Mark the block and every descendant INVALID, for good."""
        entry = self._require(block_hash)
        if entry.parent is None:
            raise ValueError("the genesis block cannot be invalid")
        if entry.status is Status.INVALID:
            return entry  # its descendants are invalid already
        stack = [entry]
        while stack:
            walk = stack.pop()
            walk.status = Status.INVALID
            self._available.discard(walk.hash)
            self._frontier.discard(walk.hash)
            # An invalid child's subtree was marked when it was (or on add_header).
            stack.extend(c for c in walk.children if c.status is not Status.INVALID)
        parent = entry.parent
        if parent.hash in self._available and not any(
            child.hash in self._available for child in parent.children
        ):
            self._add_frontier(parent)
        return entry

    def _receive(self, entry: Entry, sequence: int | None) -> None:
        """Give a body its sequence number and spread availability down from it."""
        entry.sequence = self._next_sequence if sequence is None else sequence
        self._next_sequence = max(self._next_sequence, entry.sequence + 1)
        assert entry.parent is not None  # genesis is never HEADER
        if entry.parent.hash not in self._available:
            return
        stack = [entry]
        while stack:
            walk = stack.pop()
            self._available.add(walk.hash)
            assert walk.parent is not None
            self._frontier.discard(walk.parent.hash)
            self._add_frontier(walk)
            stack.extend(c for c in walk.children if c.status in _HAS_DATA)

    def _add_frontier(self, entry: Entry) -> None:
        self._frontier.add(entry.hash)
        self._push(entry)
        if len(self._heap) > 2 * len(self._frontier) + 64:
            # Drop stale heap items so the heap stays proportional to the frontier.
            self._heap = []
            for block_hash in self._frontier:
                self._push(self._entries[block_hash])

    def _push(self, entry: Entry) -> None:
        assert entry.sequence is not None
        heapq.heappush(self._heap, (-entry.chain_work, entry.sequence, entry.hash))

    # --- fork choice ---------------------------------------------------------------------

    def best_candidate(self, current_tip: Entry) -> Entry:
        """The tip with the most work among fully available chains.

        On a tie the current tip stays (if it is still a candidate); otherwise the tip
        whose body arrived first wins.
        """
        heap = self._heap
        while heap[0][2] not in self._frontier:
            heapq.heappop(heap)
        neg_work, _, best_hash = heap[0]
        if current_tip.chain_work == -neg_work and current_tip.hash in self._frontier:
            return current_tip
        return self._entries[best_hash]

    def is_candidate(self, entry: Entry) -> bool:
        """True when the entry and all its ancestors have bodies and none is invalid."""
        return entry.hash in self._available

    def ancestor(self, entry: Entry, height: int) -> Entry:
        """The ancestor of ``entry`` at ``height`` (``entry`` itself at its own height).

        ``ValueError`` for a negative height, ``BlockNotFound`` above the entry.
        """
        if height < 0:
            raise ValueError(f"negative height {height}")
        if height > entry.height:
            raise BlockNotFound(f"no ancestor at {height} of a block at {entry.height}")
        return _walk_to(entry, height)

    def fork_point(self, a: Entry, b: Entry) -> Entry:
        """The last common ancestor of ``a`` and ``b``."""
        if a.height > b.height:
            a = _walk_to(a, b.height)
        else:
            b = _walk_to(b, a.height)
        while a is not b:
            assert a.parent is not None and b.parent is not None  # one root: they meet
            a, b = a.parent, b.parent
        return a

    def reorg_path(self, old_tip: Entry, new_tip: Entry) -> tuple[list[Entry], list[Entry]]:
        """(blocks to disconnect, old tip first; blocks to connect, lowest first)."""
        fork = self.fork_point(old_tip, new_tip)
        return _down_to(old_tip, fork), _down_to(new_tip, fork)[::-1]

    def median_time_past(self, entry: Entry, span: int = 11) -> int:
        """Median timestamp of ``entry`` and up to ``span - 1`` ancestors (GetMedianTimePast)."""
        if span < 1:
            raise ValueError(f"span must be positive, not {span}")
        times: list[int] = []
        walk: Entry | None = entry
        while walk is not None and len(times) < span:
            times.append(walk.timestamp)
            walk = walk.parent
        times.sort()
        return times[len(times) // 2]

    def tips(self) -> list[Entry]:
        """Every leaf (an entry without children), most work first."""
        leaves = [self._entries[h] for h in self._leaves]
        leaves.sort(key=lambda e: (-e.chain_work, e.hash))
        return leaves

    # --- sync ----------------------------------------------------------------------------

    def locator(self, entry: Entry) -> list[str]:
        """Block locator (Bitcoin's LocatorEntries): the entry and the blocks just below it
        one by one (11 steps of 1), then steps doubling from 2, and always genesis last."""
        hashes: list[str] = []
        step = 1
        walk = entry
        while True:
            hashes.append(walk.hash)
            if walk.height == 0:
                return hashes
            walk = _walk_to(walk, max(walk.height - step, 0))
            if len(hashes) > 10:
                step *= 2

    def headers_after_locator(
        self, active_tip: Entry, locator: Sequence[str], limit: int
    ) -> list[Entry]:
        """Up to ``limit`` active-chain entries after the first locator hash we share.

        A locator hash that extends our tip means the asker is ahead: nothing to send.
        With no hash in common, the answer starts after genesis.
        """
        active = self._active
        active.set_tip(active_tip)
        fork = self._genesis
        for block_hash in locator:
            entry = self._entries.get(block_hash)
            if entry is None:
                continue
            if active.contains(entry):
                fork = entry
                break
            if entry.height > active.height and _walk_to(entry, active.height) is active.tip:
                fork = active.tip
                break
        return active.entries(fork.height + 1, fork.height + 1 + limit)


def _check_work(work: int) -> None:
    # Every block's work is 2**256 // (target + 1) >= 1; positive work keeps the best
    # candidate on the frontier (a child always has more chain work than its parent).
    if work < 1:
        raise ValueError(f"block work must be positive, not {work}")


def _down_to(tip: Entry, stop: Entry) -> list[Entry]:
    """Entries from ``tip`` down to, but excluding, its ancestor ``stop``."""
    path: list[Entry] = []
    walk = tip
    while walk is not stop:
        path.append(walk)
        assert walk.parent is not None
        walk = walk.parent
    return path
