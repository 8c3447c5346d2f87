"""The block tree: statuses, fork choice, reorg paths, ancestors, locators.

The property tests grow random trees of forks, deliver bodies in random order, invalidate
random blocks, and check every answer against a slow reference that scans every entry.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus.block import Header
from consensus.chain import ActiveChain, BlockTree, Entry, Status
from consensus.errors import BlockNotFound, InvalidBlock

ZERO = "00" * 32
BITS = 0x207FFFFF
GENESIS_TIME = 1_000_000
_nonces = itertools.count(1)


def genesis_header(timestamp: int = GENESIS_TIME) -> Header:
    return Header(
        version=1,
        height=0,
        prev_hash=ZERO,
        merkle_root=ZERO,
        timestamp=timestamp,
        bits=BITS,
        miner=ZERO,
        nonce=0,
    )


def child_header(
    parent: Entry, *, timestamp: int | None = None, height: int | None = None
) -> Header:
    return Header(
        version=1,
        height=parent.height + 1 if height is None else height,
        prev_hash=parent.hash,
        merkle_root=ZERO,
        timestamp=parent.timestamp + 1000 if timestamp is None else timestamp,
        bits=BITS,
        miner=ZERO,
        nonce=next(_nonces),
    )


def new_tree(genesis_work: int = 1) -> BlockTree:
    return BlockTree(genesis_header(), genesis_work)


def extend(
    tree: BlockTree, parent: Entry, n: int, *, work: int = 1, data: bool = True
) -> list[Entry]:
    """Add ``n`` blocks on ``parent``; with ``data`` their bodies arrive too."""
    out = []
    for _ in range(n):
        parent = tree.add_header(child_header(parent), work)
        if data:
            tree.set_data(parent.hash)
        out.append(parent)
    return out


def ancestry(entry: Entry) -> list[Entry]:
    """The chain from genesis up to ``entry``, by parent links."""
    chain = []
    walk: Entry | None = entry
    while walk is not None:
        chain.append(walk)
        walk = walk.parent
    return chain[::-1]


def all_entries(tree: BlockTree) -> list[Entry]:
    out = []
    stack = [tree.genesis]
    while stack:
        entry = stack.pop()
        out.append(entry)
        stack.extend(entry.children)
    return out


def reference_best(tree: BlockTree, current_tip: Entry) -> Entry:
    """The fork-choice rule by brute force: scan every entry reachable from genesis
    through bodies only (DATA or VALID, so no INVALID and no headers-only ancestor)."""
    candidates = []
    stack = [tree.genesis]
    while stack:
        entry = stack.pop()
        candidates.append(entry)
        stack.extend(c for c in entry.children if c.status in (Status.DATA, Status.VALID))
    most = max(e.chain_work for e in candidates)
    best = [e for e in candidates if e.chain_work == most]
    if current_tip in best:
        return current_tip
    return min(best, key=lambda e: e.sequence if e.sequence is not None else -1)


# --- construction and lookups ------------------------------------------------------------


def test_genesis_entry() -> None:
    header = genesis_header()
    tree = BlockTree(header, 7)
    g = tree.genesis
    assert (g.hash, g.prev_hash, g.height, g.timestamp, g.bits) == (
        header.hash,
        ZERO,
        0,
        GENESIS_TIME,
        BITS,
    )
    assert (g.work, g.chain_work, g.status, g.sequence, g.parent) == (7, 7, Status.VALID, 0, None)
    assert len(tree) == 1
    assert header.hash in tree
    assert "ff" * 32 not in tree
    assert tree.get(header.hash) is g
    assert tree.get("ff" * 32) is None
    assert tree.tips() == [g]
    assert tree.is_candidate(g)


def test_genesis_must_be_height_zero_with_positive_work() -> None:
    tree = new_tree()
    with pytest.raises(ValueError, match="height 0"):
        BlockTree(child_header(tree.genesis), 1)
    with pytest.raises(ValueError, match="positive"):
        BlockTree(genesis_header(), 0)


def test_status_values() -> None:
    assert [s.value for s in Status] == ["header", "data", "valid", "invalid"]
    assert Status("data") is Status.DATA


def test_entry_repr_does_not_walk_the_tree() -> None:
    tree = new_tree()
    (a,) = extend(tree, tree.genesis, 1)
    assert "parent" not in repr(a)
    assert "children" not in repr(tree.genesis)


# --- add_header ----------------------------------------------------------------------------


def test_add_header_links_and_accumulates_work() -> None:
    tree = new_tree(genesis_work=10)
    header = child_header(tree.genesis, timestamp=5)
    a = tree.add_header(header, 3)
    assert (a.hash, a.prev_hash, a.height, a.timestamp, a.bits) == (
        header.hash,
        tree.genesis.hash,
        1,
        5,
        BITS,
    )
    assert (a.work, a.chain_work, a.status, a.sequence) == (3, 13, Status.HEADER, None)
    assert a.parent is tree.genesis
    assert tree.genesis.children == [a]
    assert len(tree) == 2
    assert tree.tips() == [a]
    assert not tree.is_candidate(a)


def test_add_header_is_idempotent() -> None:
    tree = new_tree()
    header = child_header(tree.genesis)
    a = tree.add_header(header, 2)
    assert tree.add_header(header, 2) is a
    assert tree.add_header(header, 99) is a
    assert len(tree) == 2
    assert tree.genesis.children == [a]


def test_add_header_unknown_parent() -> None:
    tree = new_tree()
    (a,) = extend(tree, tree.genesis, 1)
    orphan = Header(
        version=1,
        height=2,
        prev_hash="ab" * 32,
        merkle_root=ZERO,
        timestamp=1,
        bits=BITS,
        miner=ZERO,
        nonce=1,
    )
    with pytest.raises(BlockNotFound):
        tree.add_header(orphan, 1)
    assert orphan.hash not in tree
    assert a.children == []


@pytest.mark.parametrize("height", [0, 2, 7])
def test_add_header_wrong_height_is_not_recorded(height: int) -> None:
    tree = new_tree()
    header = child_header(tree.genesis, height=height)
    with pytest.raises(InvalidBlock) as info:
        tree.add_header(header, 1)
    assert info.value.code == "bad-height"
    assert header.hash not in tree
    assert tree.genesis.children == []


def test_add_header_requires_positive_work() -> None:
    tree = new_tree()
    header = child_header(tree.genesis)
    with pytest.raises(ValueError, match="positive"):
        tree.add_header(header, 0)
    assert header.hash not in tree


def test_child_of_invalid_is_recorded_invalid_and_refused() -> None:
    tree = new_tree()
    (a,) = extend(tree, tree.genesis, 1)
    tree.set_invalid(a.hash)
    header = child_header(a)
    with pytest.raises(InvalidBlock) as info:
        tree.add_header(header, 1)
    assert info.value.code == "bad-prevblk"
    b = tree.get(header.hash)
    assert b is not None
    assert b.status is Status.INVALID
    assert b.parent is a
    assert a.children == [b]
    # Known invalid: refused again, not silently returned.
    with pytest.raises(InvalidBlock) as again:
        tree.add_header(header, 1)
    assert again.value.code == "duplicate-invalid"


# --- set_data / set_valid / set_invalid ---------------------------------------------------


def test_set_data_assigns_sequence_in_arrival_order() -> None:
    tree = new_tree()
    a, b = extend(tree, tree.genesis, 2, data=False)
    assert tree.set_data(b.hash) is b
    assert (b.status, b.sequence) == (Status.DATA, 1)
    assert not tree.is_candidate(b)  # its parent's body is missing
    tree.set_data(a.hash)
    assert (a.status, a.sequence) == (Status.DATA, 2)
    assert tree.is_candidate(a)
    assert tree.is_candidate(b)
    # Again: nothing changes, the first sequence is kept.
    tree.set_data(b.hash)
    assert b.sequence == 1


def test_restored_sequences_are_kept_and_later_bodies_come_after_them() -> None:
    """After a restart bodies are given back the numbers they had, gaps and all (an invalid
    block's number is not reused), so the first received still wins a tie."""
    tree = new_tree()
    (a,) = extend(tree, tree.genesis, 1, data=False)
    x, y = (tree.add_header(child_header(a), 1) for _ in range(2))
    tree.set_valid(a.hash, 7)
    tree.set_data(x.hash, 3)
    tree.set_data(y.hash)
    assert (a.sequence, x.sequence, y.sequence) == (7, 3, 8)
    assert tree.best_candidate(tree.genesis) is x
    (z,) = extend(tree, a, 1)
    assert z.sequence == 9


def test_set_data_does_not_touch_valid_or_invalid() -> None:
    tree = new_tree()
    a, b = extend(tree, tree.genesis, 2)
    tree.set_valid(a.hash)
    tree.set_data(a.hash)
    assert a.status is Status.VALID
    tree.set_invalid(b.hash)
    tree.set_data(b.hash)
    assert b.status is Status.INVALID
    assert tree.set_data(tree.genesis.hash).status is Status.VALID


def test_set_unknown_hash() -> None:
    tree = new_tree()
    for method in (tree.set_data, tree.set_valid, tree.set_invalid):
        with pytest.raises(BlockNotFound):
            method("cd" * 32)


def test_set_valid_keeps_sequence_and_fills_a_missing_one() -> None:
    tree = new_tree()
    a, b = extend(tree, tree.genesis, 2, data=False)
    tree.set_data(a.hash)
    assert tree.set_valid(a.hash) is a
    assert (a.status, a.sequence) == (Status.VALID, 1)
    tree.set_valid(b.hash)  # straight from headers-only: its body must have arrived
    assert (b.status, b.sequence) == (Status.VALID, 2)
    assert tree.is_candidate(b)
    assert tree.best_candidate(tree.genesis) is b
    tree.set_valid(b.hash)
    assert (b.status, b.sequence) == (Status.VALID, 2)


def test_set_valid_refuses_invalid() -> None:
    tree = new_tree()
    (a,) = extend(tree, tree.genesis, 1)
    tree.set_invalid(a.hash)
    with pytest.raises(ValueError, match="invalid"):
        tree.set_valid(a.hash)
    assert a.status is Status.INVALID


def test_set_invalid_propagates_to_every_descendant() -> None:
    tree = new_tree()
    a, b, c = extend(tree, tree.genesis, 3)
    (d,) = extend(tree, a, 1, data=False)
    (side,) = extend(tree, tree.genesis, 1)
    assert tree.set_invalid(b.hash) is b
    assert [e.status for e in (a, b, c, d, side)] == [
        Status.DATA,
        Status.INVALID,
        Status.INVALID,
        Status.HEADER,
        Status.DATA,
    ]
    tree.set_invalid(a.hash)
    assert d.status is Status.INVALID
    assert not tree.is_candidate(c)
    assert tree.best_candidate(c) is side
    # Again: a no-op, everything below stays invalid.
    assert tree.set_invalid(b.hash) is b
    assert all(e.status is Status.INVALID for e in (a, b, c, d))
    assert tree.best_candidate(side) is side


def test_genesis_cannot_be_invalid() -> None:
    tree = new_tree()
    with pytest.raises(ValueError, match="genesis"):
        tree.set_invalid(tree.genesis.hash)
    assert tree.genesis.status is Status.VALID


# --- best_candidate -----------------------------------------------------------------------


def test_most_work_wins_not_most_blocks() -> None:
    tree = new_tree()
    long = extend(tree, tree.genesis, 3, work=1)
    heavy = extend(tree, tree.genesis, 1, work=5)
    assert tree.best_candidate(long[-1]) is heavy[-1]


def test_headers_only_chain_is_not_a_candidate() -> None:
    tree = new_tree()
    (a,) = extend(tree, tree.genesis, 1)
    b, c = extend(tree, tree.genesis, 2, work=3, data=False)
    assert tree.best_candidate(tree.genesis) is a
    tree.set_data(c.hash)
    assert tree.best_candidate(a) is a  # c's parent has no body yet
    tree.set_data(b.hash)
    assert tree.best_candidate(a) is c


def test_tie_keeps_the_current_tip() -> None:
    tree = new_tree()
    (a,) = extend(tree, tree.genesis, 1, work=2)
    (b,) = extend(tree, tree.genesis, 1, work=2)
    assert tree.best_candidate(b) is b
    assert tree.best_candidate(a) is a


def test_tie_without_the_current_tip_goes_to_the_first_received() -> None:
    tree = new_tree()
    a, b = (tree.add_header(child_header(tree.genesis), 2) for _ in range(2))
    tree.set_data(b.hash)
    tree.set_data(a.hash)
    assert tree.best_candidate(tree.genesis) is b
    tree.set_invalid(b.hash)
    assert tree.best_candidate(b) is a  # an invalid current tip is not kept


def test_invalid_tip_falls_back_to_its_parent() -> None:
    tree = new_tree()
    a, b = extend(tree, tree.genesis, 2)
    tree.set_invalid(b.hash)
    assert tree.best_candidate(b) is a
    tree.set_invalid(a.hash)
    assert tree.best_candidate(a) is tree.genesis


def test_fork_parent_stays_off_the_frontier_while_a_child_is_available() -> None:
    tree = new_tree()
    (a,) = extend(tree, tree.genesis, 1)
    (b,) = extend(tree, a, 1, work=1)
    (c,) = extend(tree, a, 1, work=2)
    tree.set_invalid(c.hash)
    assert tree.best_candidate(c) is b


def test_a_long_chain_keeps_the_candidate_heap_small() -> None:
    tree = new_tree()
    chain = extend(tree, tree.genesis, 500)
    for entry in chain[::-7][1:]:
        tree.set_invalid(entry.hash)
    assert len(tree._heap) <= 2 * len(tree._frontier) + 65
    assert tree.best_candidate(tree.genesis) is reference_best(tree, tree.genesis)


# --- walking the tree ---------------------------------------------------------------------


def test_ancestor() -> None:
    tree = new_tree()
    chain = [tree.genesis, *extend(tree, tree.genesis, 40)]
    tip = chain[-1]
    for height in range(41):
        assert tree.ancestor(tip, height) is chain[height]
    with pytest.raises(ValueError):
        tree.ancestor(tip, -1)
    with pytest.raises(BlockNotFound):
        tree.ancestor(tip, 41)


def test_fork_point_and_reorg_path() -> None:
    tree = new_tree()
    base = extend(tree, tree.genesis, 3)
    old = extend(tree, base[-1], 2)
    new = extend(tree, base[1], 4)
    assert tree.fork_point(old[-1], new[-1]) is base[1]
    assert tree.fork_point(new[-1], old[-1]) is base[1]
    assert tree.fork_point(old[-1], old[0]) is old[0]
    assert tree.fork_point(tree.genesis, new[-1]) is tree.genesis
    disconnect, connect = tree.reorg_path(old[-1], new[-1])
    assert disconnect == [old[1], old[0], base[2]]
    assert connect == new
    assert tree.reorg_path(old[-1], old[-1]) == ([], [])
    assert tree.reorg_path(base[0], old[-1]) == ([], [base[1], base[2], *old])
    assert tree.reorg_path(old[-1], base[0]) == ([*old[::-1], base[2], base[1]], [])


def test_median_time_past() -> None:
    tree = new_tree()
    g = tree.genesis
    assert tree.median_time_past(g) == GENESIS_TIME
    times = [5, 3, 9, 1, 7, 2, 8, 6, 4, 10, 11, 0]
    entries = []
    parent = g
    for t in times:
        parent = tree.add_header(child_header(parent, timestamp=t), 1)
        entries.append(parent)
    # The tip and its 10 ancestors: times[1:]; sorted, the middle of 11 is index 5.
    assert tree.median_time_past(entries[-1]) == sorted(times[1:])[5]
    assert tree.median_time_past(entries[1]) == sorted([GENESIS_TIME, 5, 3])[1]
    assert tree.median_time_past(entries[1], span=2) == 5  # sorted [3, 5][1]
    assert tree.median_time_past(entries[-1], span=1) == 0
    with pytest.raises(ValueError):
        tree.median_time_past(entries[-1], span=0)


def test_tips_lists_every_leaf_most_work_first() -> None:
    tree = new_tree()
    (a,) = extend(tree, tree.genesis, 1, work=1)
    b, c = extend(tree, tree.genesis, 2, work=2, data=False)
    (d,) = extend(tree, b, 1, work=5)
    tree.set_invalid(d.hash)
    assert tree.tips() == [d, c, a]


# --- locators and serving headers -----------------------------------------------------------


def test_locator_shape() -> None:
    tree = new_tree()
    chain = [tree.genesis, *extend(tree, tree.genesis, 100)]
    heights = [tree.get(h).height for h in tree.locator(chain[-1])]  # type: ignore[union-attr]
    assert heights == [100, 99, 98, 97, 96, 95, 94, 93, 92, 91, 90, 89, 87, 83, 75, 59, 27, 0]
    assert tree.locator(tree.genesis) == [tree.genesis.hash]
    assert tree.locator(chain[5]) == [chain[h].hash for h in range(5, -1, -1)]


def test_headers_after_locator() -> None:
    tree = new_tree()
    g = tree.genesis
    main = [g, *extend(tree, g, 10)]
    side = extend(tree, main[4], 3)
    tip = main[-1]
    assert tree.headers_after_locator(tip, [], 100) == main[1:]
    assert tree.headers_after_locator(tip, ["ee" * 32], 3) == main[1:4]
    assert tree.headers_after_locator(tip, [main[6].hash, g.hash], 100) == main[7:]
    assert tree.headers_after_locator(tip, [tip.hash], 100) == []
    assert tree.headers_after_locator(tip, [main[2].hash], 0) == []
    # A side-branch locator (headers-first from a peer on the fork): next hash on ours.
    assert tree.headers_after_locator(tip, tree.locator(side[-1]), 2) == main[5:7]
    # The active chain moves with the tip argument, both ways.
    assert tree.headers_after_locator(side[-1], [main[3].hash], 10) == [main[4], *side]
    assert tree.headers_after_locator(main[5], [main[3].hash], 10) == main[4:6]


def test_headers_after_locator_when_the_asker_is_ahead() -> None:
    tree = new_tree()
    main = extend(tree, tree.genesis, 6)
    ahead = extend(tree, main[-1], 3)
    # The asker's locator starts beyond our tip (main[-1]), on blocks we know.
    assert tree.headers_after_locator(main[-1], tree.locator(ahead[-1]), 10) == []
    # Far enough ahead that their locator steps over our tip: still nothing to send.
    far = extend(tree, ahead[-1], 30)
    assert main[-1].hash not in tree.locator(far[-1])
    assert tree.headers_after_locator(main[-1], tree.locator(far[-1]), 10) == []
    # A locator hash above our tip on another branch does not count as ahead.
    other = extend(tree, main[1], 8)
    assert tree.headers_after_locator(main[-1], [other[-1].hash, main[1].hash], 3) == main[2:5]


def test_active_chain() -> None:
    tree = new_tree()
    g = tree.genesis
    main = [g, *extend(tree, g, 5)]
    side = extend(tree, main[2], 4)
    active = ActiveChain(main[-1])
    assert (active.tip, active.height, len(active)) == (main[-1], 5, 6)
    assert list(active) == main
    assert active[3] is main[3]
    assert active.contains(main[4])
    assert not active.contains(side[0])
    assert not active.contains(side[-1])
    with pytest.raises(BlockNotFound):
        active[6]
    with pytest.raises(BlockNotFound):
        active[-1]
    assert active.entries(4, 100) == main[4:]
    active.set_tip(side[-1])
    assert list(active) == [*main[:3], *side]
    active.set_tip(main[1])
    assert list(active) == main[:2]
    active.set_tip(main[-1])
    assert list(active) == main
    active.set_tip(main[-1])
    assert list(active) == main


# --- properties over random trees of forks ------------------------------------------------


# Per block: where to attach (0-1: on the newest block, 2: near it, 3: anywhere), a pick,
# a timestamp and the block's work (small works make equal-work forks common).
BLOCK_SHAPE = st.tuples(
    st.integers(0, 3), st.integers(0, 2**16), st.integers(0, 10**6), st.sampled_from([1, 1, 2, 5])
)


@st.composite
def random_tree(draw: st.DrawFn) -> tuple[BlockTree, list[Entry]]:
    """A tree of forks: random parents, work and timestamps; every body still missing."""
    tree = BlockTree(genesis_header(draw(st.integers(0, 10**6))), draw(st.integers(1, 5)))
    entries = [tree.genesis]
    size = draw(st.integers(1, 60))
    for where, pick, timestamp, work in draw(st.lists(BLOCK_SHAPE, min_size=size, max_size=size)):
        # Mostly extend recent blocks so long chains (and skip pointers) appear.
        span = (1, 1, 3, len(entries))[where]
        parent = entries[-1 - pick % min(span, len(entries))]
        entries.append(tree.add_header(child_header(parent, timestamp=timestamp), work))
    return tree, entries


def apply_reorg(chain: list[Entry], disconnect: list[Entry], connect: list[Entry]) -> None:
    for entry in disconnect:
        assert chain.pop() is entry
    for entry in connect:
        assert entry.parent is chain[-1]
        chain.append(entry)


ACTIONS = ("data",) * 6 + ("valid", "invalid", "invalid-active", "header")
OP = st.tuples(st.sampled_from(ACTIONS), st.integers(0, 2**16), st.integers(1, 5))
OPS = st.integers(1, 120).flatmap(lambda n: st.lists(OP, min_size=n, max_size=n))


@settings(max_examples=200, deadline=None)
@given(random_tree(), OPS)
def test_fork_choice_matches_the_reference(
    grown: tuple[BlockTree, list[Entry]], ops: list[tuple[str, int, int]]
) -> None:
    tree, entries = grown
    tip = tree.genesis
    chain = [tip]
    for action, pick, work in ops:
        entry = entries[1 + pick % (len(entries) - 1)]
        if action == "header":
            grow_one(tree, entries, entry, work)
        elif action == "invalid":
            tree.set_invalid(entry.hash)
        elif action == "invalid-active" and len(chain) > 1:
            tree.set_invalid(chain[1 + pick % (len(chain) - 1)].hash)
        elif action == "valid" and entry.status is not Status.INVALID:
            tree.set_valid(entry.hash)
        else:
            tree.set_data(entry.hash)
        best = tree.best_candidate(tip)
        assert best is reference_best(tree, tip)
        assert tree.is_candidate(best)
        disconnect, connect = tree.reorg_path(tip, best)
        apply_reorg(chain, disconnect, connect)
        assert chain == ancestry(best)
        tip = best
    # The candidate flags agree with the rule, entry by entry.
    for entry in entries:
        expect = all(a.status in (Status.DATA, Status.VALID) for a in ancestry(entry))
        assert tree.is_candidate(entry) == expect


def grow_one(tree: BlockTree, entries: list[Entry], parent: Entry, work: int) -> None:
    """A header arriving late: on an invalid parent it is recorded invalid and refused."""
    header = child_header(parent)
    if parent.status is Status.INVALID:
        with pytest.raises(InvalidBlock, match="bad-prevblk"):
            tree.add_header(header, work)
        entry = tree.get(header.hash)
        assert entry is not None
        assert entry.status is Status.INVALID
    else:
        entry = tree.add_header(header, work)
        assert entry.status is Status.HEADER
    entries.append(entry)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_walks_match_brute_force(data: st.DataObject) -> None:
    tree, entries = data.draw(random_tree())
    a = data.draw(st.sampled_from(entries))
    b = data.draw(st.sampled_from(entries))
    path_a, path_b = ancestry(a), ancestry(b)
    common = [x for x, y in zip(path_a, path_b, strict=False) if x is y]
    fork = tree.fork_point(a, b)
    assert fork is common[-1]
    disconnect, connect = tree.reorg_path(a, b)
    assert disconnect == path_a[len(common) :][::-1]
    assert connect == path_b[len(common) :]
    for height in range(a.height + 1):
        assert tree.ancestor(a, height) is path_a[height]
    span = data.draw(st.integers(1, 15))
    times = sorted(e.timestamp for e in path_a[-span:])
    assert tree.median_time_past(a, span) == times[len(times) // 2]
    assert (
        tree.median_time_past(a)
        == sorted(e.timestamp for e in path_a[-11:])[len(path_a[-11:]) // 2]
    )
    assert set(tree.tips()) == {e for e in entries if not e.children}
    assert len(tree) == len(entries)


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_locator_has_the_step_shape(data: st.DataObject) -> None:
    tree, entries = data.draw(random_tree())
    tip = data.draw(st.sampled_from(entries))
    path = ancestry(tip)
    heights = [tree.get(h).height for h in tree.locator(tip)]  # type: ignore[union-attr]
    assert heights[0] == tip.height
    assert heights[-1] == 0
    assert all(path[h].hash == x for h, x in zip(heights, tree.locator(tip), strict=True))
    steps = [x - y for x, y in itertools.pairwise(heights)]
    for i, step in enumerate(steps[:-1]):
        assert step == 2 ** max(0, i - 10)
    if steps:
        assert 1 <= steps[-1] <= 2 ** max(0, len(steps) - 11)


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_headers_after_locator_continues_the_askers_chain(data: st.DataObject) -> None:
    tree, entries = data.draw(random_tree())
    ours = data.draw(st.sampled_from(entries))
    theirs = data.draw(st.sampled_from(entries))
    limit = data.draw(st.integers(1, 50))
    got = tree.headers_after_locator(ours, tree.locator(theirs), limit)
    path = ancestry(ours)
    fork = tree.fork_point(ours, theirs)
    if fork is ours:
        assert got == []  # the asker has everything we have
    else:
        # We send from at most the fork point on: never less than what they miss.
        assert got
        start = got[0].height
        assert start <= fork.height + 1
        assert got == path[start : start + limit]
