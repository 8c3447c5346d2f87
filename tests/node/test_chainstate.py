"""The chain state over a real store: batches of blocks, header runs, reorgs, restarts.

``process_blocks`` checks a run of blocks, stores the bodies that pass and activates the
best chain once, in one storage transaction; whatever the batching, the chain it ends on
must be the one ``process_block`` of each gives. Blocks are real regtest blocks (their
proof of work solved, about two hashes each) on a fixed clock an hour after genesis.
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus.block import Block, Header
from consensus.chain import Status
from consensus.errors import BlockNotFound, BlockTooNew, InvalidBlock, InvalidTx
from consensus.ledger import MemoryLedger
from consensus.params import REGTEST
from consensus.tx import Transaction
from node.chainstate import BlockOutcome, BlockResult, ChainState
from node.store import Store
from tests.consensus.conftest import (
    ALICE,
    ALICE_HEX,
    BOB,
    BOB_HEX,
    TIMESTAMP,
    attestation_payload,
    dataset_payload,
    digest,
    inference_payload,
    make_tx,
    revocation_payload,
)
from tests.functional.fakepeer import (
    build_block,
    forged_signature,
    harder_bits,
    with_bad_pow,
    with_bits,
)
from tests.helpers.chain import process_block
from tests.helpers.ledger import apply_block_txs
from tests.node.test_store import GENESIS, INDEX_TABLES, WORK, dump

CLOCK_MS = REGTEST.genesis_timestamp_ms + 3_600_000
BODY_TABLES = ("headers", "blocks", "block_txs", "txs")
ACCEPTED = (BlockOutcome.ACCEPTED, None)

OpenChain = Callable[[str], ChainState]

# --- helpers -------------------------------------------------------------------------------


def clock() -> int:
    return CLOCK_MS


def mine(parent: Header, txs: Sequence[Transaction] = (), salt: int = 0) -> Block:
    """A valid regtest block on ``parent``; ``salt`` tells apart siblings."""
    return build_block(parent, txs, timestamp=parent.timestamp + 1_000 + salt)


def mine_run(parent: Header, bodies: Sequence[Sequence[Transaction]], salt: int = 0) -> list[Block]:
    """One block per entry of ``bodies``, each on the one before, the first on ``parent``."""
    blocks: list[Block] = []
    for txs in bodies:
        blocks.append(mine(parent, txs, salt))
        parent = blocks[-1].header
    return blocks


def fresh(key: Ed25519PrivateKey = ALICE, name: str = "d", **extra: Any) -> Transaction:
    return make_tx(key, "dataset", dataset_payload(name, **extra))


def batch(blocks: Sequence[Block]) -> list[tuple[Block, frozenset[str]]]:
    return [(block, frozenset()) for block in blocks]


def outcomes(results: Sequence[BlockResult]) -> list[tuple[BlockOutcome, str | None]]:
    return [(r.outcome, r.code) for r in results]


def one_by_one(chain: ChainState, blocks: Sequence[Block]) -> list[BlockResult]:
    return [process_block(chain, block) for block in blocks]


def tables(
    chain: ChainState, names: Iterable[str] = (*INDEX_TABLES, *BODY_TABLES)
) -> dict[str, list[Any]]:
    """The rows of ``names``, sorted, read on a separate connection."""
    rows = dump(Path(chain.store._db.path), names)
    return {name: sorted(found) for name, found in rows.items()}


def stored_statuses(chain: ChainState) -> dict[str, str]:
    return {header.hash: status for header, _work, status, _seq in chain.store.load_headers()}


def tree_statuses(chain: ChainState) -> dict[str, Status]:
    hashes = stored_statuses(chain)
    return {h: entry.status for h in hashes if (entry := chain.tree.get(h)) is not None}


def status_of(chain: ChainState, block: Block) -> tuple[Status | None, str | None]:
    """The block's status in the tree and in the store."""
    entry = chain.tree.get(block.hash)
    return (None if entry is None else entry.status), stored_statuses(chain).get(block.hash)


def active(chain: ChainState) -> list[str]:
    return chain.store.active_hashes(0, 1_000)


@pytest.fixture
def open_chain(tmp_path: Path) -> Iterator[OpenChain]:
    """Opens (or reopens) the chain state of a named data directory; closes every store."""
    stores: list[Store] = []

    def factory(name: str = "a") -> ChainState:
        store = Store.open(tmp_path / name / "chain.sqlite", REGTEST, durable=False)
        stores.append(store)
        return ChainState(store, REGTEST, clock=clock)

    yield factory
    for store in stores:
        store.close()


@pytest.fixture
def chain(open_chain: OpenChain) -> ChainState:
    return open_chain("a")


def lineage_run(lineage: dict[str, Transaction], parent: Header = GENESIS.header) -> list[Block]:
    r = lineage
    return mine_run(
        parent,
        [
            [r["raw"], r["clean"], r["held_out"]],
            [r["model"]],
            [],
            [r["inference"], r["audit"]],
            [r["revoke"]],
        ],
    )


# --- runs of valid blocks ------------------------------------------------------------------


def test_a_batch_connects_every_block_in_order(
    chain: ChainState, lineage: dict[str, Transaction]
) -> None:
    blocks = lineage_run(lineage)
    results = chain.process_blocks(batch(blocks))
    assert outcomes(results) == [ACCEPTED] * len(blocks)
    assert [r.hash for r in results] == [b.hash for b in blocks]
    reorg = results[0].reorg
    assert all(r.reorg is reorg for r in results)
    assert (reorg.disconnected, reorg.connected) == ([], blocks)
    assert (chain.tip.hash, chain.height) == (blocks[-1].hash, len(blocks))
    assert chain.store.tip() == (blocks[-1].hash, len(blocks))
    assert active(chain) == [GENESIS.hash, *(b.hash for b in blocks)]
    for height, block in enumerate(blocks, start=1):
        assert status_of(chain, block) == (Status.VALID, "valid")
        for index, tx in enumerate(block.transactions):
            assert chain.store.tx_location(tx.txid) == (block.hash, height, index)
    assert chain.store.revoked_by(lineage["raw"].txid) == lineage["revoke"].txid
    assert chain.store.parents([lineage["model"].txid]) == sorted(
        [
            (lineage["model"].txid, lineage["clean"].txid, "training_data"),
            (lineage["model"].txid, lineage["held_out"].txid, "validation_data"),
        ]
    )


def test_one_block_at_a_time_ends_in_the_same_state(
    open_chain: OpenChain, lineage: dict[str, Transaction]
) -> None:
    blocks = lineage_run(lineage)
    batched, single = open_chain("batched"), open_chain("single")
    batched.process_blocks(batch(blocks))
    for block in blocks:
        result = process_block(single, block)
        assert (result.outcome, result.reorg.connected) == (BlockOutcome.ACCEPTED, [block])
    assert single.tip.hash == batched.tip.hash
    assert tables(single) == tables(batched)


def test_a_batch_in_reverse_order_connects_once_its_headers_are_known(
    chain: ChainState, lineage: dict[str, Transaction]
) -> None:
    blocks = lineage_run(lineage)
    run = chain.process_headers(b.header for b in blocks)
    assert run.failure is None
    results = chain.process_blocks(batch(blocks[::-1]))
    assert outcomes(results) == [ACCEPTED] * len(blocks)
    assert results[0].reorg.connected == blocks
    assert chain.tip.hash == blocks[-1].hash
    assert active(chain) == [GENESIS.hash, *(b.hash for b in blocks)]
    assert all(chain.store.record(t.txid) is not None for t in lineage.values())


def test_children_before_unknown_parents_need_them(chain: ChainState) -> None:
    blocks = mine_run(GENESIS.header, [[fresh()], [fresh()], [fresh()]])
    results = chain.process_blocks(batch(blocks[::-1]))
    assert outcomes(results) == [
        (BlockOutcome.NEED_PARENTS, "prev-blk-not-found"),
        (BlockOutcome.NEED_PARENTS, "prev-blk-not-found"),
        ACCEPTED,
    ]
    assert chain.tip.hash == blocks[0].hash
    assert chain.process_blocks(batch(blocks[1:]))[-1].reorg.connected == blocks[1:]


# --- duplicates and orphans ----------------------------------------------------------------


def test_the_same_block_twice_in_a_batch_is_a_duplicate(chain: ChainState) -> None:
    first, second = mine_run(GENESIS.header, [[fresh()], [fresh()]])
    results = chain.process_blocks(batch([first, second, first]))
    assert outcomes(results) == [ACCEPTED, ACCEPTED, (BlockOutcome.DUPLICATE, None)]
    assert results[2].reorg.connected == [first, second]
    assert chain.tip.hash == second.hash
    assert outcomes(chain.process_blocks(batch([second]))) == [(BlockOutcome.DUPLICATE, None)]


def test_a_block_of_an_unknown_parent_changes_nothing_else(open_chain: OpenChain) -> None:
    first, second = mine_run(GENESIS.header, [[fresh()], [fresh()]])
    missing = mine(first.header, [fresh()], salt=7)
    orphan = mine(missing.header, [fresh()])
    chain, control = open_chain("orphan"), open_chain("control")
    results = chain.process_blocks(batch([first, orphan, second]))
    assert outcomes(results) == [
        ACCEPTED,
        (BlockOutcome.NEED_PARENTS, "prev-blk-not-found"),
        ACCEPTED,
    ]
    assert results[1].reorg.connected == [first, second]
    assert orphan.hash not in chain.tree
    assert chain.store.get_header(orphan.hash) is None
    assert chain.store.record(orphan.transactions[0].txid) is None
    control.process_blocks(batch([first, second]))
    assert tables(chain) == tables(control)


# --- a block that breaks a ledger rule -----------------------------------------------------


class Context:
    """What a batch is built on: records confirmed before it, and its first and last txs."""

    def __init__(self) -> None:
        self.dataset = fresh(ALICE, "confirmed")
        self.other = fresh(ALICE, "to-revoke")
        self.revocation = make_tx(ALICE, "revocation", revocation_payload(self.other.txid))
        self.first = fresh(ALICE, "first-in-batch")
        self.last = fresh(BOB, "last-in-batch")


BREAKS: dict[str, tuple[str, Callable[[Context], Transaction]]] = {
    "confirmed-txid": ("duplicate", lambda c: c.dataset),
    "txid-earlier-in-batch": ("duplicate", lambda c: c.first),
    "confirmed-nonce": (
        "duplicate-nonce",
        lambda c: make_tx(ALICE, "dataset", dataset_payload("again"), nonce=c.dataset.nonce),
    ),
    "nonce-earlier-in-batch": (
        "duplicate-nonce",
        lambda c: make_tx(ALICE, "dataset", dataset_payload("again"), nonce=c.first.nonce),
    ),
    "reference-later-in-batch": (
        "unknown-reference",
        lambda c: fresh(BOB, "early", derived_from=[c.last.txid]),
    ),
    "reference-nowhere": (
        "unknown-reference",
        lambda c: make_tx(BOB, "attestation", attestation_payload("ab" * 32)),
    ),
    "reference-kind": (
        "bad-reference-kind",
        lambda c: make_tx(BOB, "inference", inference_payload(c.dataset.txid)),
    ),
    "revoked-twice": (
        "already-revoked",
        lambda c: make_tx(ALICE, "revocation", revocation_payload(c.other.txid)),
    ),
    "revoked-by-another": (
        "not-subject-signer",
        lambda c: make_tx(BOB, "revocation", revocation_payload(c.dataset.txid)),
    ),
}


@pytest.mark.parametrize("rule", BREAKS)
def test_a_block_breaking_a_ledger_rule_stops_the_batch(chain: ChainState, rule: str) -> None:
    code, make_bad = BREAKS[rule]
    context = Context()
    before = mine_run(GENESIS.header, [[context.dataset, context.other], [context.revocation]])
    chain.process_blocks(batch(before))
    good = fresh(BOB, "good-in-bad-block")
    blocks = mine_run(
        before[-1].header,
        [[context.first], [fresh(BOB)], [good, make_bad(context)], [context.last], []],
    )
    *run, beyond = blocks
    ok, bad, after = run[:2], run[2], run[3:]
    chain.process_headers(b.header for b in blocks)
    results = chain.process_blocks(batch(run))
    assert outcomes(results) == [
        ACCEPTED,
        ACCEPTED,
        (BlockOutcome.REJECTED, code),
        (BlockOutcome.REJECTED, "bad-prevblk"),
    ]
    assert results[2].message is not None
    assert all(r.reorg is results[0].reorg for r in results)
    assert (results[0].reorg.disconnected, results[0].reorg.connected) == ([], ok)
    assert chain.tip.hash == ok[-1].hash
    assert chain.store.tip() == (ok[-1].hash, len(before) + len(ok))
    for block in ok:
        assert status_of(chain, block) == (Status.VALID, "valid")
    for block in [bad, *after, beyond]:
        assert status_of(chain, block) == (Status.INVALID, "invalid")
    assert chain.store.record(context.first.txid) is not None
    assert chain.store.record(good.txid) is None
    assert chain.store.record(context.last.txid) is None
    assert {row[1] for row in tables(chain, ["confirmed"])["confirmed"]} == {
        b.hash for b in [*before, *ok]
    }
    again = chain.process_blocks(batch([bad]))
    assert outcomes(again) == [(BlockOutcome.REJECTED, "duplicate-invalid")]


def test_blocks_failing_their_own_checks_leave_the_rest_of_the_batch(chain: ChainState) -> None:
    first, second, third = mine_run(GENESIS.header, [[fresh()], [fresh()], [fresh()]])
    forged = mine(first.header, [forged_signature(fresh())], salt=3)
    forged_child = mine(forged.header, [fresh()])
    high = with_bad_pow(mine(first.header, salt=4))
    high_child = mine(high.header)
    mutated = Block(second.header, (fresh(),))
    results = chain.process_blocks(
        batch([first, forged, forged_child, high, high_child, mutated, second, third])
    )
    assert outcomes(results) == [
        ACCEPTED,
        (BlockOutcome.REJECTED, "bad-signature"),
        (BlockOutcome.REJECTED, "bad-prevblk"),
        (BlockOutcome.REJECTED, "high-hash"),
        (BlockOutcome.NEED_PARENTS, "prev-blk-not-found"),
        (BlockOutcome.REJECTED, "bad-merkle-root"),
        ACCEPTED,
        ACCEPTED,
    ]
    assert results[0].reorg.connected == [first, second, third]
    assert chain.tip.hash == third.hash
    assert status_of(chain, forged) == (Status.INVALID, "invalid")
    assert status_of(chain, forged_child) == (Status.INVALID, "invalid")
    assert high.hash not in chain.tree
    assert chain.store.get_block(second.hash) == second


# --- reorgs --------------------------------------------------------------------------------


def test_a_heavier_branch_in_one_batch_is_one_reorg(open_chain: OpenChain) -> None:
    kept, dropped, added = fresh(ALICE, "kept"), fresh(ALICE, "dropped"), fresh(BOB, "added")
    old = mine_run(GENESIS.header, [[kept], [dropped]])
    new = mine_run(GENESIS.header, [[kept], [added], []], salt=1)
    chain, control = open_chain("reorg"), open_chain("control")
    chain.process_blocks(batch(old))
    results = chain.process_blocks(batch(new))
    assert outcomes(results) == [ACCEPTED] * 3
    reorg = results[0].reorg
    assert all(r.reorg is reorg for r in results)
    assert reorg.disconnected == old[::-1]
    assert reorg.connected == new
    assert chain.tip.hash == new[-1].hash
    assert active(chain) == [GENESIS.hash, *(b.hash for b in new)]
    assert chain.store.record(dropped.txid) is None
    assert chain.store.tx_location(kept.txid) == (new[0].hash, 1, 0)
    assert chain.store.tx_location(added.txid) == (new[1].hash, 2, 0)
    assert [status_of(chain, b) for b in old] == [(Status.VALID, "valid")] * 2
    control.process_blocks(batch(new))
    assert tables(chain, INDEX_TABLES) == tables(control, INDEX_TABLES)


def test_a_heavier_branch_with_an_invalid_block_keeps_the_old_tip(chain: ChainState) -> None:
    old = mine_run(GENESIS.header, [[fresh()], [fresh()]])
    chain.process_blocks(batch(old))
    first = fresh(BOB, "side")
    reuse = make_tx(BOB, "dataset", dataset_payload("side-again"), nonce=first.nonce)
    new = mine_run(GENESIS.header, [[first], [fresh()], [reuse], []], salt=1)
    results = chain.process_blocks(batch(new))
    assert outcomes(results) == [
        ACCEPTED,
        ACCEPTED,
        (BlockOutcome.REJECTED, "duplicate-nonce"),
        (BlockOutcome.REJECTED, "bad-prevblk"),
    ]
    assert (results[0].reorg.disconnected, results[0].reorg.connected) == ([], [])
    assert chain.tip.hash == old[-1].hash
    assert active(chain) == [GENESIS.hash, *(b.hash for b in old)]
    assert chain.store.record(first.txid) is None
    assert [status_of(chain, b)[0] for b in new] == [
        Status.DATA,
        Status.DATA,
        Status.INVALID,
        Status.INVALID,
    ]


# --- header runs ---------------------------------------------------------------------------


def test_a_valid_header_run_is_stored_whole(open_chain: OpenChain) -> None:
    chain = open_chain("a")
    blocks = mine_run(GENESIS.header, [[], [], []])
    run = chain.process_headers(b.header for b in blocks)
    assert run.failure is None
    assert [e.hash for e in run.accepted] == [b.hash for b in blocks]
    assert all(e.status is Status.HEADER for e in run.accepted)
    again = chain.process_headers(b.header for b in blocks)
    assert [a is b for a, b in zip(again.accepted, run.accepted, strict=True)] == [True] * 3
    assert chain.tip.hash == GENESIS.hash
    chain.store.close()
    reopened = open_chain("a")
    assert reopened.store.load_headers()[1:] == [
        (b.header, (b.height + 1) * WORK, "header", None) for b in blocks
    ]
    assert [status_of(reopened, b) for b in blocks] == [(Status.HEADER, "header")] * 3
    assert reopened.tip.hash == GENESIS.hash


BAD_HEADERS: dict[str, tuple[Callable[[Header], Block], type[Exception]]] = {
    "high-hash": (lambda parent: with_bad_pow(mine(parent)), InvalidBlock),
    "bad-diffbits": (
        lambda parent: with_bits(mine(parent), harder_bits(parent.bits)),
        InvalidBlock,
    ),
    "time-too-old": (
        lambda parent: build_block(parent, timestamp=GENESIS.header.timestamp),
        InvalidBlock,
    ),
    "time-too-new": (
        lambda parent: build_block(parent, timestamp=CLOCK_MS + REGTEST.max_future_ms + 1),
        BlockTooNew,
    ),
}


@pytest.mark.parametrize("code", BAD_HEADERS)
def test_a_header_run_stops_at_the_first_bad_header(chain: ChainState, code: str) -> None:
    make_bad, kind = BAD_HEADERS[code]
    good = mine_run(GENESIS.header, [[], []])
    bad = make_bad(good[-1].header)
    after = mine(bad.header)
    run = chain.process_headers([*(b.header for b in good), bad.header, after.header])
    assert [e.hash for e in run.accepted] == [b.hash for b in good]
    assert isinstance(run.failure, kind)
    assert getattr(run.failure, "code", None) == code
    assert chain.store.load_headers()[1:] == [
        (b.header, (b.height + 1) * WORK, "header", None) for b in good
    ]
    assert bad.hash not in chain.tree
    assert after.hash not in chain.tree


def test_a_checked_run_skips_only_the_context_free_checks(chain: ChainState) -> None:
    """``checked=True`` trusts the caller with ``check_header`` (a worker ran it), and
    nothing else: a header off its parent's context still fails."""
    good = mine(GENESIS.header)
    unsolved = with_bad_pow(mine(good.header))
    assert chain.process_headers([good.header, unsolved.header]).failure is not None
    run = chain.process_headers([good.header, unsolved.header], checked=True)
    assert run.failure is None
    assert [e.hash for e in run.accepted] == [good.hash, unsolved.hash]
    wrong_height = replace(mine(unsolved.header).header, height=99)
    run = chain.process_headers([wrong_height], checked=True)
    assert isinstance(run.failure, InvalidBlock)
    assert run.failure.code == "bad-height"


def test_a_header_run_from_an_unknown_parent_stores_nothing(chain: ChainState) -> None:
    missing, *blocks = mine_run(GENESIS.header, [[], [], []])
    run = chain.process_headers(b.header for b in blocks)
    assert run.accepted == []
    assert isinstance(run.failure, BlockNotFound)
    assert missing.hash in str(run.failure)
    assert chain.store.load_headers() == [(GENESIS.header, WORK, "valid", 0)]
    assert all(b.hash not in chain.tree for b in blocks)


# --- restarts ------------------------------------------------------------------------------


def test_a_restart_keeps_the_tip_and_every_status(open_chain: OpenChain) -> None:
    chain = open_chain("a")
    spent = fresh(ALICE, "spent")
    main = mine_run(GENESIS.header, [[spent], [fresh()], [spent], [], []])
    side = mine(GENESIS.header, [fresh(BOB)], salt=3)
    headers_only = mine(main[1].header, salt=5)
    chain.process_headers([*(b.header for b in main), headers_only.header])
    results = chain.process_blocks(batch([*main[:4], side]))
    assert outcomes(results)[2] == (BlockOutcome.REJECTED, "duplicate")
    statuses = tree_statuses(chain)
    assert set(statuses.values()) == set(Status)
    before = tables(chain)
    chain.store.close()
    reopened = open_chain("a")
    assert (reopened.tip.hash, reopened.height) == (main[1].hash, 2)
    assert tree_statuses(reopened) == statuses
    assert {h: str(s) for h, s in statuses.items()} == stored_statuses(reopened)
    assert tables(reopened) == before
    assert (
        outcomes(reopened.process_blocks(batch([main[2], main[4]])))
        == [(BlockOutcome.REJECTED, "duplicate-invalid")] * 2
    )
    follow = mine(main[1].header, [fresh()], salt=9)
    [result] = reopened.process_blocks(batch([follow]))
    assert (result.outcome, result.reorg.connected) == (BlockOutcome.ACCEPTED, [follow])


def test_the_first_received_tie_break_survives_restarts(open_chain: OpenChain) -> None:
    chain = open_chain("a")
    kept = fresh(ALICE, "kept")
    [first] = mine_run(GENESIS.header, [[kept]])
    invalid = mine(first.header, [kept], salt=1)
    parent = mine(first.header, salt=2)
    late, early = sorted((mine(parent.header, salt=n) for n in range(2)), key=lambda b: b.hash)
    chain.process_blocks(batch([first, invalid]))
    chain.process_header(parent.header)
    process_block(chain, early)
    chain.store.close()
    chain = open_chain("a")
    process_block(chain, late)
    chain.store.close()
    chain = open_chain("a")
    [result] = chain.process_blocks(batch([parent]))
    assert result.reorg.connected == [parent, early]
    assert chain.tip.hash == early.hash


# --- batches against one block at a time ---------------------------------------------------

KEYS = {ALICE_HEX: ALICE, BOB_HEX: BOB}
TX_SPECS = st.tuples(
    st.sampled_from(("fresh", "copy", "nonce", "derive", "revoke", "unknown")),
    st.integers(0, 20),
)
CHAINS = st.lists(st.lists(TX_SPECS, max_size=3), min_size=1, max_size=5)


class SpecRecords:
    """Transactions from specs ``(action, n)``: a fresh dataset (signed by key ``n``
    modulo 2), a dataset derived from an unknown txid, or a copy, nonce reuse, derivation
    or revocation of the ``n``-th earlier one (modulo how many there are); valid or not
    depending on where that one ended up."""

    def __init__(self) -> None:
        self.made: list[Transaction] = []
        self.nonces = {signer: itertools.count(1) for signer in KEYS}

    def sign(
        self, signer: str, kind: str, payload: dict[str, Any], nonce: int | None = None
    ) -> Transaction:
        nonce = next(self.nonces[signer]) if nonce is None else nonce
        return make_tx(KEYS[signer], kind, payload, nonce, timestamp=TIMESTAMP)

    def make(self, action: str, n: int) -> Transaction:
        name = f"record-{len(self.made)}"
        if action == "unknown":
            return self.sign(
                ALICE_HEX, "dataset", dataset_payload(name, derived_from=[digest(name)[7:]])
            )
        if action == "fresh" or not self.made:
            return self.sign(sorted(KEYS)[n % 2], "dataset", dataset_payload(name))
        earlier = self.made[n % len(self.made)]
        if action == "copy":
            return earlier
        if action == "nonce":
            return self.sign(earlier.signer, "dataset", dataset_payload(name), earlier.nonce)
        if action == "derive":
            return self.sign(
                earlier.signer, "dataset", dataset_payload(name, derived_from=[earlier.txid])
            )
        return self.sign(earlier.signer, "revocation", revocation_payload(earlier.txid))

    def bodies(self, specs: list[list[tuple[str, int]]]) -> list[list[Transaction]]:
        bodies: list[list[Transaction]] = []
        for block_specs in specs:
            bodies.append([])
            for action, n in block_specs:
                self.made.append(self.make(action, n))
                bodies[-1].append(self.made[-1])
        return bodies


def expected_tip(blocks: Sequence[Block]) -> str:
    """The last block of the longest prefix whose blocks all pass, by the reference rules."""
    ledger = MemoryLedger()
    tip = GENESIS.hash
    for block in blocks:
        txids = [tx.txid for tx in block.transactions]
        if len(set(txids)) != len(txids):
            break
        try:
            added = apply_block_txs(ledger, block.transactions).added
        except InvalidTx:
            break
        for tx in added:
            ledger.add(tx)
        tip = block.hash
    return tip


@settings(max_examples=25, deadline=None)
@given(CHAINS)
def test_a_batch_ends_where_one_block_at_a_time_does(specs: list[list[tuple[str, int]]]) -> None:
    blocks = mine_run(GENESIS.header, SpecRecords().bodies(specs))
    with tempfile.TemporaryDirectory() as root:
        opened = [
            Store.open(Path(root) / name / "chain.sqlite", REGTEST, durable=False) for name in "ab"
        ]
        try:
            batched, single = (ChainState(store, REGTEST, clock=clock) for store in opened)
            together = batched.process_blocks(batch(blocks))
            apart = one_by_one(single, blocks)
            assert [r.outcome for r in together] == [r.outcome for r in apart]
            assert batched.tip.hash == single.tip.hash == expected_tip(blocks)
            assert tables(batched, INDEX_TABLES) == tables(single, INDEX_TABLES)
            assert stored_statuses(batched) == stored_statuses(single)
        finally:
            for store in opened:
                store.close()
