"""Headers (the 128-byte layout), blocks (the JSON form), genesis and params."""

from __future__ import annotations

import hashlib
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consensus.block import HEADER_SIZE, ZERO_HASH, Block, Header
from consensus.errors import InvalidBlock
from consensus.genesis import genesis_block, genesis_header
from consensus.merkle import merkle_root
from consensus.params import DEVNET, NETWORKS, REGTEST, ConsensusParams, params_for
from consensus.pow import bits_to_target, check_pow, solve
from tests.consensus.conftest import ALICE, dataset_payload, hex64, make_tx

headers = st.builds(
    Header,
    version=st.integers(0, 2**32 - 1),
    height=st.integers(0, 2**64 - 1),
    prev_hash=hex64,
    merkle_root=hex64,
    timestamp=st.integers(0, 2**64 - 1),
    bits=st.integers(0, 2**32 - 1),
    miner=hex64,
    nonce=st.integers(0, 2**53 - 1),
)


def sample_header(**changes: object) -> Header:
    fields: dict[str, object] = {
        "version": 1,
        "height": 7,
        "prev_hash": "11" * 32,
        "merkle_root": "22" * 32,
        "timestamp": 1_795_824_000_123,
        "bits": 0x207FFFFF,
        "miner": "33" * 32,
        "nonce": 42,
    }
    fields.update(changes)
    return Header(**fields)  # type: ignore[arg-type]


def test_header_layout_is_the_normative_one() -> None:
    raw = sample_header().raw
    assert len(raw) == HEADER_SIZE
    assert raw[0:4] == (1).to_bytes(4, "big")
    assert raw[4:12] == (7).to_bytes(8, "big")
    assert raw[12:44] == b"\x11" * 32
    assert raw[44:76] == b"\x22" * 32
    assert raw[76:84] == (1_795_824_000_123).to_bytes(8, "big")
    assert raw[84:88] == bytes.fromhex("207fffff")
    assert raw[88:120] == b"\x33" * 32
    assert raw[120:128] == (42).to_bytes(8, "big")
    assert sample_header().hash == hashlib.sha256(raw).hexdigest()
    assert sample_header().prefix() == raw[:120]


@given(headers)
def test_header_round_trips(header: Header) -> None:
    assert Header.decode(header.raw) == header
    assert Header.from_hex(header.raw.hex()) == header
    assert Header.from_json(header.to_json()) == header
    assert header.with_nonce(0).raw[:120] == header.raw[:120]


@pytest.mark.parametrize(
    "changes",
    [
        {"version": -1},
        {"version": 2**32},
        {"height": 2**64},
        {"nonce": 2**53},
        {"timestamp": -5},
        {"bits": True},
        {"height": 1.0},
    ],
)
def test_header_rejects_out_of_range_fields(changes: dict[str, object]) -> None:
    with pytest.raises(InvalidBlock) as info:
        sample_header(**changes)
    assert info.value.code == "bad-header"


@pytest.mark.parametrize("field", ["prev_hash", "merkle_root", "miner"])
@pytest.mark.parametrize("value", ["ab", "G" * 64, "AB" * 32, 5])
def test_header_rejects_bad_hex(field: str, value: object) -> None:
    obj = sample_header().to_json()
    obj[field] = value
    with pytest.raises(InvalidBlock):
        Header.from_json(obj)


def test_header_decode_errors() -> None:
    with pytest.raises(InvalidBlock, match="128 bytes"):
        Header.decode(b"\x00" * 127)
    raw = sample_header().raw
    for nonce in (2**53, 2**64 - 1):
        with pytest.raises(InvalidBlock, match="nonce"):
            Header.decode(raw[:120] + nonce.to_bytes(8, "big"))
    assert Header.decode(raw[:120] + (2**53 - 1).to_bytes(8, "big")).nonce == 2**53 - 1
    with pytest.raises(InvalidBlock, match="not hex"):
        Header.from_hex("zz")
    with pytest.raises(InvalidBlock):
        Header.from_json({"version": 1})
    with pytest.raises(InvalidBlock):
        Header.from_json([1, 2])


def test_block_json_round_trip() -> None:
    txs = (
        make_tx(ALICE, "dataset", dataset_payload("a")),
        make_tx(ALICE, "dataset", dataset_payload("b")),
    )
    header = sample_header(merkle_root=merkle_root([t.leaf_bytes for t in txs]).hex())
    block = Block(header, txs)
    obj = block.to_json(with_header_hex=True)
    assert obj["hash"] == header.hash and obj["header_hex"] == header.raw.hex()
    assert Block.from_json(obj) == block
    assert Block.from_json(block.to_json()) == block
    assert block.height == 7 and block.leaves() == [t.leaf_bytes for t in txs]


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda o: o.pop("header"), "bad-block"),
        (lambda o: o.update(extra=1), "bad-block"),
        (lambda o: o.update(hash="00" * 32), "bad-block"),
        (lambda o: o.update(header_hex="00" * 128), "bad-block"),
        (lambda o: o.update(transactions={}), "bad-block"),
        (lambda o: o["transactions"].append({"version": 1}), "bad-tx-schema"),
    ],
)
def test_block_from_json_errors(mutate: object, code: str) -> None:
    obj = Block(sample_header(), ()).to_json()
    mutate(obj)  # type: ignore[operator]
    with pytest.raises(InvalidBlock) as info:
        Block.from_json(obj)
    assert info.value.code == code
    with pytest.raises(InvalidBlock):
        Block.from_json("not a block")


@pytest.mark.parametrize("params", [REGTEST, DEVNET], ids=lambda p: p.network)
def test_genesis_is_fixed_and_meets_pow(params: ConsensusParams) -> None:
    header = genesis_header(params)
    assert (header.height, header.prev_hash, header.miner) == (0, ZERO_HASH, ZERO_HASH)
    assert header.merkle_root == hashlib.sha256(b"").hexdigest()
    assert header.timestamp == 1_795_824_000_000  # 2026-11-28T00:00:00Z
    assert header.bits == params.pow_limit_bits
    check_pow(bytes.fromhex(header.hash), header.bits, params)
    assert genesis_block(params).transactions == ()
    assert genesis_block(params).hash == header.hash


@pytest.mark.parametrize("params", [REGTEST, DEVNET], ids=lambda p: p.network)
def test_genesis_nonce_is_the_lowest_that_meets_pow_limit(params: ConsensusParams) -> None:
    prefix = genesis_header(params).prefix()
    assert solve(prefix, params.pow_limit, 0, params.genesis_nonce + 1) == params.genesis_nonce


def test_genesis_hashes_identify_the_networks() -> None:
    assert genesis_header(REGTEST).hash == (
        "6aa7273cd66c44554ffc89f9ae0d2d7c5c3a4ed9b367b95763a73df2211b6b91"
    )
    assert genesis_header(DEVNET).hash == (
        "000002e8eef51d0165eb963f570f1d86ec4588942b73a0b6283a6ddf95134978"
    )


def test_params() -> None:
    for params in NETWORKS.values():
        assert params.pow_limit == bits_to_target(params.pow_limit_bits)
        assert params_for(params.network) is params
    assert REGTEST.retarget is False and DEVNET.retarget is True
    with pytest.raises(KeyError, match="regtest"):
        params_for("mainnet")
    assert struct.calcsize(">IQ32s32sQI32s") + 8 == HEADER_SIZE
