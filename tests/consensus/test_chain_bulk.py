"""A tree loaded in bulk from a stored chain answers exactly as one grown header by header.

A node restarts with ``BlockTree.from_chain`` (the active chain as columns, ids equal to
heights) and then adds the other headers one by one; before the restart its tree grew
through ``add_header`` alone. Random trees of forks are built both ways and every answer
compared: entries, lookups, fork choice after the same random changes, walks, locators.
"""

from __future__ import annotations

import contextlib
from array import array

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus.block import Header
from consensus.blockindex import BlockIndex, lookup_value
from consensus.chain import ActiveChain, BlockTree, ChainColumns, Entry, Status
from consensus.errors import InvalidBlock
from tests.consensus.test_chain import BLOCK_SHAPE, OPS, child_header, genesis_header


def columns(chain: list[Entry], indexed: int | None = None) -> ChainColumns:
    """The chain as a store hands it over; ``indexed``: the heights its lookup covers."""
    covered = len(chain) if indexed is None else indexed
    return ChainColumns(
        hashes=b"".join(bytes.fromhex(e.hash) for e in chain),
        timestamps=array("Q", (e.timestamp for e in chain)),
        bits=array("I", (e.bits for e in chain)),
        chain_work=b"".join(e.chain_work.to_bytes(32, "big") for e in chain),
        sequences=array("q", (-1 if e.sequence is None else e.sequence for e in chain)),
        lookup=array(
            "Q",
            sorted(lookup_value(bytes.fromhex(e.hash), h) for h, e in enumerate(chain[:covered])),
        ),
    )


@st.composite
def grown_tree(draw: st.DrawFn) -> tuple[BlockTree, dict[str, Header], Entry]:
    """A random tree of forks whose best chain is VALID (a node's active chain), with
    bodies and invalid marks scattered over the rest; and its active tip."""
    genesis = genesis_header(draw(st.integers(0, 10**6)))
    tree = BlockTree(genesis, draw(st.integers(1, 5)))
    headers = {genesis.hash: genesis}
    entries = [tree.genesis]
    for where, pick, timestamp, work in draw(st.lists(BLOCK_SHAPE, min_size=1, max_size=60)):
        span = (1, 1, 3, len(entries))[where]
        parent = entries[-1 - pick % min(span, len(entries))]
        header = child_header(parent, timestamp=timestamp)
        headers[header.hash] = header
        entries.append(tree.add_header(header, work))
    for pick, action in draw(st.lists(st.tuples(st.integers(0, 2**16), st.integers(0, 5)))):
        entry = entries[1 + pick % (len(entries) - 1)]
        if action == 0:
            tree.set_invalid(entry.hash)
        elif entry.status is not Status.INVALID:
            tree.set_data(entry.hash)
    tip = tree.best_candidate(tree.genesis)
    for height in range(1, tip.height + 1):
        tree.set_valid(tree.ancestor(tip, height).hash)
    return tree, headers, tip


def restarted(tree: BlockTree, headers: dict[str, Header], tip: Entry) -> BlockTree:
    """What a restart makes of ``tree`` with this active tip (as ``ChainState`` does it):
    the chain in bulk, the other headers by height, then statuses by arrival."""
    chain = [tree.ancestor(tip, h) for h in range(tip.height + 1)]
    on_chain = {e.hash for e in chain}
    genesis = headers[tree.genesis.hash]
    loaded = BlockTree.from_chain(genesis, tree.genesis.work, columns(chain, len(chain) // 2))
    side = sorted((e for e in every(tree) if e.hash not in on_chain), key=lambda e: e.height)
    for entry in side:
        with contextlib.suppress(InvalidBlock):  # on an invalid parent: recorded all the same
            loaded.add_header(headers[entry.hash], entry.work)
    for sequence, block_hash, status in sorted(
        (e.sequence, e.hash, e.status) for e in side if e.sequence is not None
    ):
        if status is Status.VALID:
            loaded.set_valid(block_hash, sequence)
        elif status is Status.DATA:
            loaded.set_data(block_hash, sequence)
    for entry in side:
        if entry.status is Status.INVALID:
            loaded.set_invalid(entry.hash)
    return loaded


def every(tree: BlockTree) -> list[Entry]:
    out, stack = [], [tree.genesis]
    while stack:
        entry = stack.pop()
        out.append(entry)
        stack.extend(entry.children)
    return out


def fields(entry: Entry, sequences: bool = True) -> tuple[object, ...]:
    # (An invalid block's arrival number is not reloaded: it never wins a tie again. So
    # the numbers given after a restart may differ; their order does not.)
    invalid = entry.status is Status.INVALID or not sequences
    return (
        entry.hash,
        entry.prev_hash,
        entry.height,
        entry.timestamp,
        entry.bits,
        entry.work,
        entry.chain_work,
        entry.status,
        None if invalid else entry.sequence,
        sorted(c.hash for c in entry.children),
    )


def twin(tree: BlockTree, entry: Entry) -> Entry:
    found = tree.get(entry.hash)
    assert found is not None
    return found


def assert_same(a: BlockTree, b: BlockTree, a_tip: Entry, sequences: bool = True) -> None:
    assert len(a) == len(b)
    for entry in every(a):
        other = twin(b, entry)
        assert fields(entry, sequences) == fields(other, sequences)
        assert a.is_candidate(entry) == b.is_candidate(other)
        assert a.locator(entry) == b.locator(other)
        assert a.median_time_past(entry) == b.median_time_past(other)
        assert twin(b, a.fork_point(entry, a_tip)) is b.fork_point(other, twin(b, a_tip))
        got = b.headers_after_locator(twin(b, a_tip), a.locator(entry), 7)
        assert [e.hash for e in a.headers_after_locator(a_tip, a.locator(entry), 7)] == [
            e.hash for e in got
        ]
    assert [e.hash for e in a.tips()] == [e.hash for e in b.tips()]
    assert a.best_candidate(a_tip).hash == b.best_candidate(twin(b, a_tip)).hash
    assert b.get("ab" * 32) is None
    assert "not a hash" not in b


@settings(max_examples=150, deadline=None)
@given(grown_tree(), OPS)
def test_a_restarted_tree_answers_as_the_grown_one(
    grown: tuple[BlockTree, dict[str, Header], Entry], ops: list[tuple[str, int, int]]
) -> None:
    tree, headers, tip = grown
    loaded = restarted(tree, headers, tip)
    assert_same(tree, loaded, tip)
    entries = every(tree)
    for action, pick, work in ops:  # the same changes after the restart, on both
        entry = entries[pick % len(entries)]
        if action == "header" and entry.status is not Status.INVALID:
            header = child_header(entry)
            headers[header.hash] = header
            entries.append(tree.add_header(header, work))
            loaded.add_header(header, work)
        elif action.startswith("invalid") and entry.height > 0:
            tree.set_invalid(entry.hash)
            loaded.set_invalid(entry.hash)
        elif action == "data":
            tree.set_data(entry.hash)
            loaded.set_data(entry.hash)
        tip = tree.best_candidate(tip)
        assert loaded.best_candidate(twin(loaded, tip)) is twin(loaded, tip)
    assert_same(tree, loaded, tip, sequences=False)


def test_columns_must_describe_a_valid_chain_from_this_genesis() -> None:
    genesis = genesis_header()
    tree = BlockTree(genesis, 3)
    good = columns([tree.genesis])
    assert BlockTree.from_chain(genesis, 3, good).genesis.hash == genesis.hash
    with pytest.raises(ValueError, match="genesis work"):
        BlockTree.from_chain(genesis, 4, good)
    with pytest.raises(ValueError, match="this genesis"):
        BlockTree.from_chain(genesis_header(5), 3, good)
    short = ChainColumns(**{**good.__dict__, "hashes": b""})
    with pytest.raises(ValueError, match="sizes"):
        BlockTree.from_chain(genesis, 3, short)


def test_many_additions_fold_into_the_sorted_lookup() -> None:
    """Past 4,096 additions the lookup dict folds into the sorted arrays: every hash is
    still found, and an unknown one is not."""
    tree = BlockTree(genesis_header(), 1)
    tip = tree.genesis
    hashes = []
    for _ in range(5_000):
        tip = tree.add_header(child_header(tip), 1)
        hashes.append(tip.hash)
    assert all(tree.get(h) is not None and tree.get(h).hash == h for h in hashes)  # type: ignore[union-attr]
    assert tree.get("00" * 32) is None
    assert len(tree) == 5_001


def test_entries_of_an_earlier_tree_are_found_again_by_hash() -> None:
    """After a storage failure the node reloads its tree; entries held from before still
    answer (by hash) in the new one, and an unknown string is no hash."""
    genesis = genesis_header()
    old = BlockTree(genesis, 1)
    main = [old.genesis]
    for _ in range(5):
        main.append(old.add_header(child_header(main[-1]), 1))
        old.set_valid(main[-1].hash)
    new = BlockTree.from_chain(genesis, 1, columns(main))
    assert new.ancestor(main[-1], 2).hash == main[2].hash
    assert new.best_candidate(main[-1]).hash == main[-1].hash
    assert new.get("zz" * 32) is None
    assert "zz" * 32 not in new
    with pytest.raises(ValueError, match="another block index"):
        ActiveChain(new.genesis).set_tip(main[-1])


def test_hashes_sharing_a_lookup_prefix_are_told_apart() -> None:
    """The sorted lookup keys only a hash's first 4 bytes; equal keys are resolved by the
    whole hash (peers can grind such hashes cheaply)."""
    index = BlockIndex()
    raws = [bytes(4) + bytes([n]) * 28 for n in range(1, 4)]
    for n, raw in enumerate(raws):
        index.append(raw, n, 0, 0, n + 1, 0, n - 1, 0)
    index._fold_recent()
    for n, raw in enumerate(raws):
        assert index.find(raw.hex()) == n
    assert index.find((bytes(4) + bytes([9]) * 28).hex()) == -1
