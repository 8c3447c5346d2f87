"""The store's bulk operations: each is the single-row one of every item, in few statements.

``put_blocks``, ``connect_blocks``, ``put_headers`` and ``set_header_statuses`` must leave
exactly what the one-at-a-time calls leave, and refuse a bad batch before writing any of
it. ``ledger_for`` prefetches what the ledger rules will ask about a group of
transactions: its answers must be the store's own, for those keys and for any other.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus.block import Block, Header
from consensus.ledger import LedgerView
from consensus.params import REGTEST
from consensus.tx import Transaction
from node.store import Store, StoreError
from tests.consensus.conftest import (
    ALICE,
    ALICE_HEX,
    BOB,
    BOB_HEX,
    TIMESTAMP,
    dataset_payload,
    hex64,
    inference_payload,
    make_tx,
    model_payload,
    revocation_payload,
)
from tests.helpers.chain import connect_block
from tests.node.test_store import GENESIS, INDEX_TABLES, WORK, dump, make_block

ALL_TABLES = (*INDEX_TABLES, "headers", "blocks", "block_txs", "txs", "mempool")
KEYS = {ALICE_HEX: ALICE, BOB_HEX: BOB}
SIGNERS = sorted(KEYS)

# --- helpers -------------------------------------------------------------------------------


def signed(
    signer: str, kind: str, payload: dict[str, Any], nonce: int | None = None
) -> Transaction:
    return make_tx(KEYS[signer], kind, payload, nonce, timestamp=TIMESTAMP)


def dataset(name: str, nonce: int | None = None, signer: str = ALICE_HEX) -> Transaction:
    return signed(signer, "dataset", dataset_payload(name), nonce)


def revocation(subject: str, nonce: int | None = None, signer: str = ALICE_HEX) -> Transaction:
    return signed(signer, "revocation", revocation_payload(subject), nonce)


def open_store(path: Path) -> Store:
    return Store.open(path, REGTEST, durable=False)


def snapshot(store: Store, tables: Iterable[str] = ALL_TABLES) -> dict[str, list[Any]]:
    """Every row of ``tables``, sorted, read on a separate connection."""
    return {name: sorted(rows) for name, rows in dump(Path(store._db.path), tables).items()}


def header_rows(blocks: Iterable[Block]) -> list[tuple[Header, int, str, int | None]]:
    return [(b.header, (b.height + 1) * WORK, "data", None) for b in blocks]


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[tuple[Store, Store]]:
    """Two empty stores: a bulk call on one, the single calls on the other."""
    first, second = open_store(tmp_path / "a.sqlite"), open_store(tmp_path / "b.sqlite")
    yield first, second
    first.close()
    second.close()


@pytest.fixture
def store(stores: tuple[Store, Store]) -> Store:
    return stores[0]


@pytest.fixture
def run() -> list[Block]:
    """Three linked blocks of records that reference each other."""
    raw = dataset("raw")
    clean = signed(ALICE_HEX, "dataset", dataset_payload("clean", derived_from=[raw.txid]))
    model = make_tx(BOB, "model", model_payload("net", inputs=[(clean.txid, "training_data")]))
    inference = make_tx(BOB, "inference", inference_payload(model.txid))
    revoke = revocation(clean.txid)
    first = make_block(GENESIS.header, [raw, clean])
    second = make_block(first.header, [model])
    third = make_block(second.header, [inference, revoke])
    return [first, second, third]


@pytest.fixture
def side(run: list[Block]) -> list[Block]:
    """A branch off genesis, three blocks long, that shares a transaction with ``run``."""
    first = make_block(GENESIS.header, [run[0].transactions[0]], salt=1)
    second = make_block(first.header, [dataset("side")], salt=1)
    return [first, second, make_block(second.header, [], salt=1)]


# --- put_blocks ----------------------------------------------------------------------------


def test_put_blocks_is_put_block_of_each(
    stores: tuple[Store, Store], run: list[Block], side: list[Block]
) -> None:
    bulk, single = stores
    blocks = [*run, *side]
    for store in stores:
        store.put_headers(header_rows(blocks))
    empty = snapshot(bulk)
    bulk.put_blocks(blocks)
    for block in blocks:
        single.put_block(block)
    assert snapshot(bulk) != empty
    assert snapshot(bulk) == snapshot(single)
    assert [bulk.get_block(b.hash) for b in blocks] == blocks


def test_put_blocks_is_idempotent(store: Store, run: list[Block], side: list[Block]) -> None:
    store.put_headers(header_rows([*run, *side]))
    store.put_blocks(run)
    once = snapshot(store)
    store.put_blocks([run[1], run[1], *run])
    assert snapshot(store) == once
    store.put_blocks([*side, side[0], *run])
    assert [store.get_block(b.hash) for b in [*run, *side]] == [*run, *side]


def test_put_blocks_refuses_a_block_without_its_header(store: Store, run: list[Block]) -> None:
    store.put_headers(header_rows([run[0], run[2]]))
    before = snapshot(store)
    with pytest.raises(StoreError, match="put_header") as raised:
        store.put_blocks(run)
    assert run[1].hash in str(raised.value)
    assert snapshot(store) == before
    assert not any(store.has_block(b.hash) for b in run)


# --- connect_blocks ------------------------------------------------------------------------


def test_connect_blocks_is_connect_block_of_each(
    stores: tuple[Store, Store], run: list[Block]
) -> None:
    bulk, single = stores
    pending = dataset("pending")
    for store in stores:
        store.put_headers(header_rows(run))
        store.mempool_add_many([run[0].transactions[1], pending, run[2].transactions[0]], 7)
    bulk.connect_blocks(run)
    for block in run:
        connect_block(single, block)
    assert snapshot(bulk) == snapshot(single)
    assert bulk.tip() == (run[-1].hash, 3)
    assert bulk.mempool_load() == [(pending, 7)]
    assert bulk.revoked_by(run[0].transactions[1].txid) == run[2].transactions[1].txid


BAD_RUNS: dict[str, Callable[[list[Block], list[Block]], list[Block]]] = {
    "the tip again": lambda run, side: [run[0]],
    "a sibling of the tip": lambda run, side: [side[0]],
    "the next height on another branch": lambda run, side: [side[1]],
    "a gap": lambda run, side: [run[2]],
    "a block twice": lambda run, side: [run[1], run[1]],
    "parents after children": lambda run, side: [run[2], run[1]],
    "a good block then another branch": lambda run, side: [run[1], side[2]],
}


@pytest.mark.parametrize("case", BAD_RUNS)
def test_connect_blocks_refuses_a_run_that_does_not_extend_the_tip(
    store: Store, run: list[Block], side: list[Block], case: str
) -> None:
    store.put_headers(header_rows([*run, *side]))
    store.connect_blocks(run[:1])
    before = snapshot(store)
    with pytest.raises(StoreError, match="does not extend the tip"):
        store.connect_blocks(BAD_RUNS[case](run, side))
    assert snapshot(store) == before
    assert store.tip() == (run[0].hash, 1)
    store.connect_blocks(run[1:])
    assert store.tip() == (run[-1].hash, 3)


# --- headers -------------------------------------------------------------------------------


def test_put_headers_inserts_and_updates_like_put_header(
    stores: tuple[Store, Store], run: list[Block]
) -> None:
    first, second, third = (b.header for b in run)
    rounds = [
        [(first, 2 * WORK, "header", None), (second, 3 * WORK, "data", 3)],
        [
            (first, 2 * WORK, "data", 5),
            (second, 3 * WORK, "valid", None),
            (third, 4 * WORK, "header", None),
        ],
    ]
    bulk, single = stores
    for rows in rounds:
        bulk.put_headers(rows)
        for row in rows:
            single.put_header(*row)
    assert bulk.load_headers()[1:] == [
        (first, 2 * WORK, "data", 5),
        (second, 3 * WORK, "valid", 3),
        (third, 4 * WORK, "header", None),
    ]
    assert snapshot(bulk) == snapshot(single)


@pytest.mark.parametrize(
    ("row", "message"),
    [((2 * WORK, "bogus", None), "status"), ((0, "data", None), "chain work")],
)
def test_put_headers_refuses_a_bad_row_before_writing(
    store: Store, run: list[Block], row: tuple[int, str, None], message: str
) -> None:
    before = snapshot(store)
    with pytest.raises(StoreError, match=message):
        store.put_headers([(run[0].header, 2 * WORK, "data", 1), (run[1].header, *row)])
    assert snapshot(store) == before


def test_set_header_statuses_is_set_header_status_of_each(
    stores: tuple[Store, Store], run: list[Block]
) -> None:
    rows = [(run[0].hash, "valid", 4), (run[1].hash, "invalid", None), (run[2].hash, "data", 6)]
    bulk, single = stores
    for store in stores:
        store.put_headers(header_rows(run))
        store.set_header_status(run[1].hash, "data", 5)
    bulk.set_header_statuses(rows)
    for row in rows:
        single.set_header_status(*row)
    assert [(s, n) for _h, _w, s, n in bulk.load_headers()[1:]] == [
        ("valid", 4),
        ("invalid", 5),
        ("data", 6),
    ]
    assert snapshot(bulk) == snapshot(single)


def test_set_header_statuses_of_one_hash_twice_is_as_one_after_the_other(
    store: Store, run: list[Block]
) -> None:
    store.put_headers(header_rows(run[:2]))
    store.set_header_statuses(
        [(run[0].hash, "invalid", 7), (run[1].hash, "data", 3), (run[0].hash, "valid", None)]
    )
    assert [(s, n) for _h, _w, s, n in store.load_headers()[1:]] == [("valid", 7), ("data", 3)]


def test_set_header_statuses_names_an_unknown_hash(store: Store, run: list[Block]) -> None:
    store.put_headers(header_rows(run[:1]))
    with pytest.raises(StoreError, match="unknown header") as raised:
        store.set_header_statuses([(run[0].hash, "valid", 2), (run[1].hash, "valid", 3)])
    assert run[1].hash in str(raised.value)
    assert run[0].hash not in str(raised.value)


def test_set_header_statuses_with_an_unknown_hash_changes_nothing(
    store: Store, run: list[Block]
) -> None:
    store.put_headers(header_rows(run[:1]))
    before = snapshot(store)
    with pytest.raises(StoreError, match="unknown header"):
        store.set_header_statuses([(run[0].hash, "invalid", 2), (run[1].hash, "valid", 3)])
    assert snapshot(store) == before


# --- ledger_for ----------------------------------------------------------------------------


def assert_same_answers(
    view: LedgerView, store: Store, txids: Iterable[str], nonces: Iterable[int]
) -> None:
    """``view`` answers every ledger question on these keys as ``store`` does."""
    for txid in set(txids):
        assert view.record(txid) == store.record(txid), txid
        assert view.is_revoked(txid) == store.is_revoked(txid), txid
    for signer in SIGNERS:
        for nonce in nonces:
            assert view.nonce_used(signer, nonce) == store.nonce_used(signer, nonce)


def keys_of(txs: Iterable[Transaction]) -> list[str]:
    """The txids of ``txs`` and every txid they reference."""
    return [key for tx in txs for key in (tx.txid, *(ref for ref, _ in tx.refs()))]


CONFIRMED = st.lists(st.tuples(st.booleans(), st.integers(0, 1), st.integers(0, 50)), max_size=8)
ASKED = st.lists(
    st.tuples(
        st.sampled_from(("copy", "dataset", "derived", "model", "revocation")),
        st.integers(0, 1),
        st.integers(0, 10),
        st.integers(0, 50),
    ),
    max_size=8,
)


def confirmed_txs(specs: list[tuple[bool, int, int]], outsider: str) -> list[Transaction]:
    """Records the store can hold: datasets, and revocations of distinct subjects (earlier
    records, or ``outsider`` the first time), each signer's nonces distinct."""
    txs: list[Transaction] = []
    revoked: set[str] = set()
    for nonce, (revokes, signer, pick) in enumerate(specs):
        subjects = [t.txid for t in txs if t.kind != "revocation"] + [outsider]
        subjects = [s for s in subjects if s not in revoked]
        if revokes and subjects:
            subject = subjects[pick % len(subjects)]
            revoked.add(subject)
            txs.append(revocation(subject, nonce, SIGNERS[signer]))
        else:
            txs.append(dataset(f"confirmed-{nonce}", nonce, SIGNERS[signer]))
    return txs


def asked_txs(
    specs: list[tuple[str, int, int, int]], confirmed: list[Transaction], outsider: str
) -> list[Transaction]:
    """Anything at all: copies of confirmed records, and records whose nonces, references
    and subjects fall on confirmed ones, on earlier asked ones, or on ``outsider``."""
    txs: list[Transaction] = []
    for n, (action, signer_index, nonce, pick) in enumerate(specs):
        signer = SIGNERS[signer_index]
        pool = [t.txid for t in [*confirmed, *txs]] + [outsider]
        target = pool[pick % len(pool)]
        if action == "copy" and confirmed:
            txs.append(confirmed[pick % len(confirmed)])
        elif action == "derived":
            payload = dataset_payload(f"asked-{n}", derived_from=[target])
            txs.append(signed(signer, "dataset", payload, nonce))
        elif action == "model":
            payload = model_payload(f"asked-{n}", inputs=[(target, "base_model")])
            txs.append(signed(signer, "model", payload, nonce))
        elif action == "revocation":
            txs.append(revocation(target, nonce, signer))
        else:
            txs.append(dataset(f"asked-{n}", nonce, signer))
    return txs


@settings(max_examples=40, deadline=None)
@given(CONFIRMED, ASKED, hex64, hex64, st.integers(1, 3))
def test_ledger_for_answers_as_the_store_does(
    confirmed_specs: list[tuple[bool, int, int]],
    asked_specs: list[tuple[str, int, int, int]],
    outsider: str,
    stranger: str,
    split: int,
) -> None:
    confirmed = confirmed_txs(confirmed_specs, outsider)
    asked = asked_txs(asked_specs, confirmed, outsider)
    first = make_block(GENESIS.header, confirmed[:split])
    second = make_block(first.header, confirmed[split:])
    with tempfile.TemporaryDirectory() as root, open_store(Path(root) / "c.sqlite") as store:
        store.put_headers(header_rows([first, second]))
        store.connect_blocks([first, second])
        view = store.ledger_for(tx for tx in asked)
        txids = [*keys_of(confirmed), *keys_of(asked), outsider, stranger]
        assert_same_answers(view, store, txids, range(60))


def test_ledger_for_answers_across_statement_batches(store: Store) -> None:
    confirmed = [dataset(f"many-{n}", n) for n in range(600)]
    revoked = [revocation(t.txid, n, BOB_HEX) for n, t in enumerate(confirmed[570:])]
    asked = [revocation(t.txid, 300 + n) for n, t in enumerate(confirmed)]
    block = make_block(GENESIS.header, [*confirmed, *revoked])
    store.put_headers(header_rows([block]))
    store.connect_blocks([block])
    view = store.ledger_for(asked)
    assert_same_answers(view, store, keys_of([*confirmed, *revoked, *asked]), range(950))
    assert sum(view.is_revoked(t.txid) for t in confirmed) == len(revoked)
    assert sum(view.nonce_used(ALICE_HEX, n) for n in range(300, 900)) == 300
