"""The mempool: validation against chain + pool, bounds, revalidation, template selection."""

from __future__ import annotations

import pytest

from consensus.errors import InvalidTx
from consensus.ledger import MemoryLedger
from consensus.params import REGTEST
from consensus.tx import Transaction
from node.errors import MempoolFull
from node.mempool import Mempool
from tests.consensus.conftest import (
    ALICE,
    BOB,
    dataset_payload,
    make_tx,
    model_payload,
    revocation_payload,
)


def pool(chain: MemoryLedger | None = None, **limits: int) -> Mempool:
    return Mempool(
        chain or MemoryLedger(),
        REGTEST,
        max_count=limits.get("count", 100),
        max_bytes=limits.get("bytes", 1 << 20),
    )


def accept(mempool: Mempool, *txs: Transaction) -> None:
    for tx in txs:
        mempool.check(tx)
        mempool.add(tx)


def test_pending_records_can_be_referenced() -> None:
    mempool = pool()
    data = make_tx(ALICE, "dataset", dataset_payload("p"))
    model = make_tx(ALICE, "model", model_payload("m", inputs=[(data.txid, "training_data")]))
    accept(mempool, data, model)
    assert mempool.txids() == [data.txid, model.txid]
    assert mempool.bytes == data.size + model.size
    with pytest.raises(InvalidTx) as info:
        mempool.check(data)
    assert info.value.code == "duplicate"
    same_nonce = make_tx(ALICE, "dataset", dataset_payload("q"), nonce=data.nonce)
    with pytest.raises(InvalidTx) as info:
        mempool.check(same_nonce)
    assert info.value.code == "duplicate-nonce"


def test_bounds_by_count_and_bytes() -> None:
    first = make_tx(ALICE, "dataset", dataset_payload("a"))
    second = make_tx(ALICE, "dataset", dataset_payload("b"))
    by_count = pool(count=1)
    accept(by_count, first)
    with pytest.raises(MempoolFull):
        by_count.check(second)
    by_bytes = pool(bytes=first.size + second.size - 1)
    accept(by_bytes, first)
    with pytest.raises(MempoolFull):
        by_bytes.check(second)


def test_confirmed_transactions_leave_and_conflicts_are_evicted_with_dependents() -> None:
    chain = MemoryLedger()
    mempool = pool(chain)
    data = make_tx(ALICE, "dataset", dataset_payload("d"))
    child = make_tx(ALICE, "dataset", dataset_payload("c", derived_from=[data.txid]))
    other = make_tx(BOB, "dataset", dataset_payload("o"))
    accept(mempool, data, child, other)

    # A block confirms only what we hold: nothing else changes.
    chain.add(other)
    assert mempool.remove_confirmed([other]) is None
    assert mempool.txids() == [data.txid, child.txid]

    # A block confirms a conflicting transaction (same signer and nonce as ``data``).
    rival = make_tx(ALICE, "dataset", dataset_payload("rival"), nonce=data.nonce)
    chain.add(rival)
    result = mempool.remove_confirmed([rival])
    assert result is not None
    assert [tx.txid for tx in result.evicted] == [data.txid, child.txid]
    assert len(mempool) == 0 and mempool.bytes == 0


def test_revalidate_puts_disconnected_transactions_first() -> None:
    chain = MemoryLedger()
    data = make_tx(ALICE, "dataset", dataset_payload("back"))
    chain.add(data)
    mempool = pool(chain)
    child = make_tx(ALICE, "dataset", dataset_payload("kid", derived_from=[data.txid]))
    accept(mempool, child)
    chain.remove(data)  # the block holding ``data`` was disconnected
    result = mempool.revalidate([data])
    assert [tx.txid for tx in result.added] == [data.txid]
    assert mempool.txids() == [data.txid, child.txid]
    assert result.evicted == []


def test_revocations_in_the_pool_count() -> None:
    chain = MemoryLedger()
    data = make_tx(ALICE, "dataset", dataset_payload("r"))
    chain.add(data)
    mempool = pool(chain)
    revoke = make_tx(ALICE, "revocation", revocation_payload(data.txid))
    accept(mempool, revoke)
    with pytest.raises(InvalidTx) as info:
        mempool.check(make_tx(ALICE, "revocation", revocation_payload(data.txid)))
    assert info.value.code == "already-revoked"
    mempool.remove_confirmed([revoke])
    assert not mempool.is_revoked(data.txid)


def test_select_respects_limits_and_dependencies() -> None:
    mempool = pool()
    big = make_tx(ALICE, "dataset", dataset_payload("big", metadata={"x": "y" * 3000}))
    child = make_tx(ALICE, "dataset", dataset_payload("child", derived_from=[big.txid]))
    small = make_tx(BOB, "dataset", dataset_payload("small"))
    accept(mempool, big, child, small)
    assert mempool.select(10, 1 << 20) == [big, child, small]
    # ``big`` does not fit: it is skipped and so is ``child``, which references it.
    assert mempool.select(10, small.size + child.size) == [small]
    assert mempool.select(1, 1 << 20) == [big]
