"""Block validity: context-free checks, checks against the parent, and the ledger rules."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest

from consensus.block import Block, Header
from consensus.errors import BlockTooNew, InvalidBlock
from consensus.genesis import genesis_header
from consensus.ledger import MemoryLedger
from consensus.merkle import merkle_root
from consensus.params import DEVNET, REGTEST
from consensus.pow import bits_to_target, solve
from consensus.tx import Transaction
from consensus.validation import (
    check_block,
    check_header,
    contextual_check_header,
    signatures_worth_checking,
)
from tests.consensus.conftest import (
    ALICE,
    BOB,
    dataset_payload,
    inference_payload,
    make_tx,
    model_payload,
)
from tests.helpers.ledger import connect_block_ledger

GENESIS = genesis_header(REGTEST)
NOW = GENESIS.timestamp + 60_000


@dataclass
class Parent:
    height: int
    timestamp: int


def mined(
    txs: tuple[Transaction, ...] = (),
    *,
    bits: int = REGTEST.pow_limit_bits,
    timestamp: int = GENESIS.timestamp + 1_000,
    height: int = 1,
    root: str | None = None,
    version: int = 1,
) -> Block:
    header = Header(
        version=version,
        height=height,
        prev_hash=GENESIS.hash,
        merkle_root=root or merkle_root([t.leaf_bytes for t in txs]).hex(),
        timestamp=timestamp,
        bits=bits,
        miner="00" * 32,
        nonce=0,
    )
    nonce = solve(header.prefix(), bits_to_target(bits), 0, 10_000)
    assert nonce is not None
    return Block(header.with_nonce(nonce), txs)


def unmined(block: Block) -> Block:
    """The same block with a nonce whose hash misses the target."""
    target = bits_to_target(block.header.bits)
    for nonce in range(1000):
        header = block.header.with_nonce(nonce)
        if int(header.hash, 16) > target:
            return Block(header, block.transactions)
    raise AssertionError("no failing nonce found")


def code_of(excinfo: pytest.ExceptionInfo[InvalidBlock]) -> str:
    return excinfo.value.code


def test_a_valid_block_passes_everything() -> None:
    data = make_tx(ALICE, "dataset", dataset_payload("v"))
    model = make_tx(ALICE, "model", model_payload("m", inputs=[(data.txid, "training_data")]))
    block = mined((data, model))
    check_block(block, REGTEST)
    contextual_check_header(
        block.header, Parent(0, GENESIS.timestamp), GENESIS.timestamp, NOW, REGTEST
    )
    overlay = connect_block_ledger(MemoryLedger(), block)
    assert overlay.added == [data, model]


def test_header_checks() -> None:
    with pytest.raises(InvalidBlock) as info:
        check_header(mined(version=2).header, REGTEST)
    assert code_of(info) == "bad-version"
    with pytest.raises(InvalidBlock) as info:
        check_header(unmined(mined()).header, REGTEST)
    assert code_of(info) == "high-hash"
    with pytest.raises(InvalidBlock) as info:
        check_header(mined(bits=0x2100FFFF).header, REGTEST)  # easier than pow_limit
    assert code_of(info) == "bad-diffbits"


def test_signatures_are_worth_checking_only_where_check_block_would_reach_them() -> None:
    txs = tuple(make_tx(ALICE, "dataset", dataset_payload(f"w{i}")) for i in range(3))
    block = mined(txs)
    assert signatures_worth_checking(block, REGTEST)
    assert signatures_worth_checking(block, replace(REGTEST, max_block_txs=3))
    assert not signatures_worth_checking(block, replace(REGTEST, max_block_txs=2))
    assert not signatures_worth_checking(unmined(block), REGTEST)
    assert not signatures_worth_checking(mined(txs, version=2), REGTEST)


def test_size_limits() -> None:
    txs = tuple(make_tx(ALICE, "dataset", dataset_payload(f"s{i}")) for i in range(3))
    block = mined(txs)
    with pytest.raises(InvalidBlock) as info:
        check_block(block, replace(REGTEST, max_block_txs=2))
    assert code_of(info) == "bad-blk-length"
    with pytest.raises(InvalidBlock) as info:
        check_block(block, replace(REGTEST, max_block_bytes=sum(t.size for t in txs) - 1))
    assert code_of(info) == "bad-blk-size"
    check_block(block, replace(REGTEST, max_block_txs=3, max_block_bytes=sum(t.size for t in txs)))


def test_duplicate_transaction_and_merkle_root() -> None:
    tx = make_tx(ALICE, "dataset", dataset_payload("dup"))
    with pytest.raises(InvalidBlock) as info:
        check_block(mined((tx, tx)), REGTEST)
    assert code_of(info) == "bad-txns-duplicate"
    with pytest.raises(InvalidBlock) as info:
        check_block(mined((tx,), root="00" * 32), REGTEST)
    assert code_of(info) == "bad-merkle-root"


def test_transactions_must_be_signed_and_on_this_network() -> None:
    good = make_tx(ALICE, "dataset", dataset_payload("sig"))
    forged = Transaction(**{**good.to_json(), "nonce": good.nonce + 1})
    with pytest.raises(InvalidBlock) as info:
        check_block(mined((forged,)), REGTEST)
    assert (code_of(info), info.value.txid) == ("bad-signature", forged.txid)
    check_block(mined((forged,)), REGTEST, verified={forged.txid})  # the caller vouched
    other = make_tx(ALICE, "dataset", dataset_payload("net"), network="devnet")
    with pytest.raises(InvalidBlock) as info:
        check_block(mined((other,)), REGTEST)
    assert code_of(info) == "wrong-network"


def test_contextual_rules() -> None:
    parent = Parent(0, GENESIS.timestamp)
    block = mined()
    with pytest.raises(InvalidBlock) as info:
        contextual_check_header(mined(height=2).header, parent, 0, NOW, REGTEST)
    assert code_of(info) == "bad-height"
    with pytest.raises(InvalidBlock) as info:
        contextual_check_header(block.header, parent, block.header.timestamp, NOW, REGTEST)
    assert code_of(info) == "time-too-old"
    with pytest.raises(BlockTooNew) as too_new:
        contextual_check_header(block.header, parent, 0, block.header.timestamp - 120_001, REGTEST)
    assert too_new.value.code == "time-too-new"
    contextual_check_header(block.header, parent, 0, block.header.timestamp - 120_000, REGTEST)


def test_bits_must_follow_the_retarget_rule() -> None:
    parent = Parent(0, DEVNET.genesis_timestamp_ms)
    header = Header(
        version=1,
        height=1,
        prev_hash="00" * 32,
        merkle_root="00" * 32,
        timestamp=parent.timestamp + 5_000,
        bits=0x1E035AFF,
        miner="00" * 32,
        nonce=0,
    )
    with pytest.raises(InvalidBlock) as info:
        contextual_check_header(header, parent, 0, header.timestamp, DEVNET)
    assert code_of(info) == "bad-diffbits"
    contextual_check_header(
        replace(header, bits=DEVNET.pow_limit_bits), parent, 0, header.timestamp, DEVNET
    )


def test_ledger_rules_apply_in_block_order() -> None:
    data = make_tx(ALICE, "dataset", dataset_payload("order"))
    model = make_tx(ALICE, "model", model_payload("later", inputs=[(data.txid, "training_data")]))
    with pytest.raises(InvalidBlock) as info:
        connect_block_ledger(MemoryLedger(), mined((model, data)))
    assert (code_of(info), info.value.txid) == ("unknown-reference", model.txid)
    wrong_kind = make_tx(BOB, "inference", inference_payload(data.txid))
    with pytest.raises(InvalidBlock) as info:
        connect_block_ledger(MemoryLedger([data]), mined((wrong_kind,)))
    assert code_of(info) == "bad-reference-kind"
