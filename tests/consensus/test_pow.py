"""Compact targets, work, the PoW check, the nonce search and ASERT (consensus/pow.py).

Compact-encoding vectors come from Bitcoin Core's arith_uint256 tests; ASERT vectors from
the Bitcoin Cash aserti3-2d specification's published test runs.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consensus.errors import InvalidBlock
from consensus.params import DEVNET, REGTEST, ConsensusParams
from consensus.pow import (
    MAX_NONCE,
    asert_target,
    bits_to_target,
    block_work,
    check_pow,
    next_bits,
    solve,
    target_to_bits,
)

BITCOIN_LIMIT = 0xFFFF << 208  # 0x1d00ffff: 0x00000000ffff0000...0000
REGTEST_LIMIT = 0x7FFFFF << 232  # 0x207fffff
U256 = 2**256

targets = st.integers(1, U256 - 1)
any_bits = st.builds(
    lambda size, word: size << 24 | word, st.integers(0, 40), st.integers(0, 0xFFFFFF)
)


def is_normalised(bits: int) -> bool:
    """Whether ``bits`` is the encoding GetCompact would produce, decided independently of it.

    The mantissa is positive with its sign bit clear; it has no avoidable leading zero
    byte (a zero top byte is allowed only when the next byte's top bit is set, since that
    bit would read as the sign); bytes below the target's end are zero; the target fits in
    256 bits.
    """
    size, word = bits >> 24, bits & 0xFFFFFF
    if word & 0x800000 or word < 0x8000:
        return False
    if size < 3 and word & ((1 << (8 * (3 - size))) - 1):
        return False
    return size <= 32 or (size == 33 and word <= 0xFFFF)


# --- bits and targets --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bits", "target"),
    [
        (0x1D00FFFF, BITCOIN_LIMIT),
        (0x207FFFFF, REGTEST_LIMIT),
        (0x01123456, 0x12),
        (0x02123456, 0x1234),
        (0x03123456, 0x123456),
        (0x04123456, 0x12345600),
        (0x05009234, 0x92340000),
        (0x20123456, 0x123456 << 232),
        (0x01010000, 1),
        (0x2100FFFF, 0xFFFF << 240),  # the largest 33-byte mantissa that fits
        (0x220000FF, 0xFF << 248),  # the largest 34-byte one
    ],
)
def test_bits_to_target_vectors(bits: int, target: int) -> None:
    assert bits_to_target(bits) == target


def test_bitcoin_limit_spelled_out() -> None:
    assert bits_to_target(0x1D00FFFF).to_bytes(32, "big").hex() == "00000000ffff" + "00" * 26


@pytest.mark.parametrize(
    ("bits", "why"),
    [
        (0x04923456, "negative"),
        (0x01FEDCBA, "negative"),  # the sign bit is judged on the shifted mantissa 0x7e
        (0x01003456, "zero"),
        (0x00123456, "zero"),
        (0x01803456, "zero"),  # the sign bit with a zero mantissa: zero, not negative
        (0x00000000, "zero"),
        (0x1D000000, "zero"),
        (0xFF123456, "overflows"),
        (0x23000001, "overflows"),  # size 35
        (0x22000100, "overflows"),  # mantissa > 0xff at size 34
        (0x21010000, "overflows"),  # mantissa > 0xffff at size 33
        (0x21800001, "negative"),
    ],
)
def test_bits_to_target_rejects(bits: int, why: str) -> None:
    with pytest.raises(InvalidBlock, match=why) as info:
        bits_to_target(bits)
    assert info.value.code == "bad-diffbits"


@pytest.mark.parametrize("bits", [-1, 2**32, 2**40, True, 1.0, "0x1d00ffff", None])
def test_bits_to_target_rejects_non_u32(bits: object) -> None:
    with pytest.raises(InvalidBlock, match="u32") as info:
        bits_to_target(bits)  # type: ignore[arg-type]
    assert info.value.code == "bad-diffbits"


@pytest.mark.parametrize(
    ("target", "bits"),
    [
        (BITCOIN_LIMIT, 0x1D00FFFF),
        (REGTEST_LIMIT, 0x207FFFFF),
        (1, 0x01010000),
        (0x12, 0x01120000),
        (0x80, 0x02008000),  # sign bit would be set: one more byte instead
        (0x1234, 0x02123400),
        (0x123456, 0x03123456),
        (0x12345600, 0x04123456),
        (0x92340000, 0x05009234),
        (0x123456789A, 0x05123456),  # low bytes are dropped
        (U256 - 1, 0x2100FFFF),
    ],
)
def test_target_to_bits_vectors(target: int, bits: int) -> None:
    assert target_to_bits(target) == bits


@pytest.mark.parametrize("target", [0, -1, U256, U256 + 1])
def test_target_to_bits_rejects_out_of_range(target: int) -> None:
    with pytest.raises(ValueError, match="target"):
        target_to_bits(target)


@given(any_bits)
def test_normalised_bits_round_trip_and_nothing_else_does(bits: int) -> None:
    try:
        target = bits_to_target(bits)
    except InvalidBlock:
        assert not is_normalised(bits)
        return
    assert (target_to_bits(target) == bits) == is_normalised(bits)


def test_normalised_bits_round_trip_exhaustively_at_every_size() -> None:
    words = [
        *range(0x8000, 0x8100),
        *range(0xFF00, 0x10100),
        *range(0x7FFF00, 0x800000),
        0x123456,
        0x400000,
    ]
    for size in range(34):
        for word in words:
            bits = size << 24 | word
            if is_normalised(bits):
                assert target_to_bits(bits_to_target(bits)) == bits, hex(bits)


@given(targets)
def test_target_round_trip_loses_only_low_bits(target: int) -> None:
    bits = target_to_bits(target)
    assert is_normalised(bits)
    decoded = bits_to_target(bits)
    dropped = max(0, 8 * ((bits >> 24) - 3))
    assert decoded == (target >> dropped) << dropped
    assert decoded <= target
    # The mantissa keeps at least 16 significant bits.
    assert target - decoded < 2 ** max(0, target.bit_length() - 15)


# --- work ----------------------------------------------------------------------------------


def test_block_work_vectors() -> None:
    assert block_work(U256 - 1) == 1
    assert block_work(BITCOIN_LIMIT) == 4295032833  # 0x100010001, Bitcoin's genesis block work
    assert block_work(REGTEST_LIMIT) == 2
    assert block_work(0) == U256


@given(st.integers(1, U256 - 2))
def test_block_work_falls_as_the_target_rises(target: int) -> None:
    assert block_work(target) >= block_work(target + 1) >= 1
    if 2 * target + 1 < U256:
        assert block_work(2 * target + 1) == block_work(target) // 2


# --- check_pow -----------------------------------------------------------------------------


def test_check_pow_accepts_a_hash_equal_to_the_target() -> None:
    check_pow(REGTEST_LIMIT.to_bytes(32, "big"), 0x207FFFFF, REGTEST)
    check_pow(bytes(32), 0x1D00FFFF, REGTEST)  # harder than the limit is fine


def test_check_pow_rejects_a_hash_just_above_the_target() -> None:
    with pytest.raises(InvalidBlock) as info:
        check_pow((REGTEST_LIMIT + 1).to_bytes(32, "big"), 0x207FFFFF, REGTEST)
    assert info.value.code == "high-hash"


@pytest.mark.parametrize("bits", [0x2100FFFF, 0x20800000, 0x04923456, 0x01003456, 2**32])
def test_check_pow_rejects_bad_or_too_easy_bits(bits: int) -> None:
    with pytest.raises(InvalidBlock) as info:
        check_pow(bytes(32), bits, REGTEST)
    assert info.value.code == "bad-diffbits"


def test_check_pow_rejects_the_regtest_limit_on_devnet() -> None:
    with pytest.raises(InvalidBlock) as info:
        check_pow(bytes(32), REGTEST.pow_limit_bits, DEVNET)
    assert info.value.code == "bad-diffbits"


def test_check_pow_wants_a_32_byte_hash() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        check_pow(bytes(31), 0x207FFFFF, REGTEST)


@given(st.binary(min_size=32, max_size=32), targets.filter(lambda t: t <= REGTEST_LIMIT))
def test_check_pow_accepts_exactly_the_hashes_at_or_below_target(
    header_hash: bytes, target: int
) -> None:
    bits = target_to_bits(target)
    decoded = bits_to_target(bits)
    if int.from_bytes(header_hash, "big") <= decoded:
        check_pow(header_hash, bits, REGTEST)
    else:
        with pytest.raises(InvalidBlock, match="high-hash"):
            check_pow(header_hash, bits, REGTEST)


# --- solve ---------------------------------------------------------------------------------


def header_hash(prefix: bytes, nonce: int) -> bytes:
    return hashlib.sha256(prefix + nonce.to_bytes(8, "big")).digest()


def brute_force(prefix: bytes, target: int, start: int, count: int) -> int | None:
    for nonce in range(start, min(start + count, MAX_NONCE)):
        if int.from_bytes(header_hash(prefix, nonce), "big") <= target:
            return nonce
    return None


@given(
    st.binary(min_size=120, max_size=120),
    st.sampled_from([U256 >> 2, U256 >> 4, U256 >> 6, 0]),
    st.integers(0, 10_000),
    st.integers(0, 80),
)
def test_solve_finds_the_lowest_nonce_in_range(
    prefix: bytes, target: int, start: int, count: int
) -> None:
    assert solve(prefix, target, start, count) == brute_force(prefix, target, start, count)


def test_solve_result_passes_check_pow() -> None:
    prefix = bytes(range(120))
    nonce = solve(prefix, REGTEST.pow_limit, 0, 1_000)
    assert nonce is not None
    check_pow(header_hash(prefix, nonce), REGTEST.pow_limit_bits, REGTEST)
    for earlier in range(nonce):
        with pytest.raises(InvalidBlock, match="high-hash"):
            check_pow(header_hash(prefix, earlier), REGTEST.pow_limit_bits, REGTEST)


def test_solve_returns_none_when_no_nonce_in_range_meets_the_target() -> None:
    prefix = bytes(120)
    assert solve(prefix, 0, 0, 500) is None
    assert solve(prefix, U256 - 1, 7, 0) is None
    assert solve(prefix, U256 - 1, 7, -3) is None


def test_solve_stops_below_max_nonce() -> None:
    prefix = bytes(120)
    assert solve(prefix, U256 - 1, MAX_NONCE - 1, 10) == MAX_NONCE - 1
    assert solve(prefix, U256 - 1, MAX_NONCE, 10) is None
    assert solve(prefix, 0, MAX_NONCE - 3, 10) is None


@pytest.mark.parametrize(("target", "start"), [(-1, 0), (U256, 0), (1, -1)])
def test_solve_rejects_bad_arguments(target: int, start: int) -> None:
    with pytest.raises(ValueError, match="must be"):
        solve(bytes(120), target, start, 1)


# --- ASERT ---------------------------------------------------------------------------------

# Bitcoin Cash's parameters, in seconds (the algorithm is unit-free), with its 0x1d00ffff
# limit. Their vectors give the bits for the block *after* one at (height, time), anchored at
# height 1 with parent time 0: in this module's terms time_delta = time, height_delta = height.
BCH = replace(DEVNET, pow_limit_bits=0x1D00FFFF, target_spacing_ms=600, halflife_ms=172_800)
# A limit far above the anchors used below, so clamping never hides the arithmetic.
WIDE = replace(DEVNET, pow_limit_bits=0x2100FFFF)


@pytest.mark.parametrize(
    ("anchor_bits", "height", "time", "expected"),
    [
        # run01: steady 600 s blocks at the limit
        (0x1D00FFFF, 2, 1200, 0x1D00FFFF),
        (0x1D00FFFF, 11, 6600, 0x1D00FFFF),
        # run05: height jumps with no time passing; -455.1 must truncate to -455, not floor
        (0x1D00FFFF, 2, 0, 0x1D00FEC5),
        (0x1D00FFFF, 290, 0, 0x1C7F62C0),
        (0x1D00FFFF, 60194, 0, 0x027F6200),
        (0x1D00FFFF, 62498, 0, 0x017F0000),
        (0x1D00FFFF, 64514, 0, 0x01010000),  # clamped up to a target of 1
        # run03: steady at the minimum target
        (0x01010000, 5, 3000, 0x01010000),
        # run07: random solve times around a real nBits
        (0x1802AEE8, 3, 1310, 0x1802AD91),
        (0x1802AEE8, 9, 7099, 0x1802B39C),
        (0x1802AEE8, 10, 7099, 0x1802B1F2),
        (0x1802AEE8, 459, 29064, 0x1800FFB4),
    ],
)
def test_asert_matches_bitcoin_cash_vectors(
    anchor_bits: int, height: int, time: int, expected: int
) -> None:
    target = asert_target(bits_to_target(anchor_bits), time, height, BCH)
    assert target_to_bits(target) == expected


def test_asert_is_clamped_to_the_pow_limit() -> None:
    late = asert_target(BCH.pow_limit, 10 * 172_800, 0, BCH)
    assert late == BCH.pow_limit


@given(st.integers(1, WIDE.pow_limit), st.integers(0, 10**7))
def test_asert_on_schedule_keeps_the_anchor_target(anchor: int, height_delta: int) -> None:
    time_delta = WIDE.target_spacing_ms * height_delta
    assert asert_target(anchor, time_delta, height_delta, WIDE) == anchor


@given(st.integers(1, WIDE.pow_limit // 2), st.integers(0, 10**7))
def test_asert_one_halflife_late_doubles_and_early_halves(anchor: int, height: int) -> None:
    on_time = WIDE.target_spacing_ms * height
    assert asert_target(anchor, on_time + WIDE.halflife_ms, height, WIDE) == 2 * anchor
    assert asert_target(anchor, on_time - WIDE.halflife_ms, height, WIDE) == max(1, anchor // 2)


deltas = st.integers(-(2**64), 2**64)
heights = st.integers(0, 2**64)


@given(st.integers(1, WIDE.pow_limit), heights, deltas, deltas)
def test_asert_never_decreases_as_time_passes(anchor: int, height: int, t1: int, t2: int) -> None:
    low, high = sorted((t1, t2))
    assert asert_target(anchor, low, height, WIDE) <= asert_target(anchor, high, height, WIDE)


@given(st.integers(1, WIDE.pow_limit), deltas, heights, heights)
def test_asert_never_increases_with_more_blocks(anchor: int, time: int, h1: int, h2: int) -> None:
    low, high = sorted((h1, h2))
    assert asert_target(anchor, time, high, WIDE) <= asert_target(anchor, time, low, WIDE)


@given(st.sampled_from([DEVNET, WIDE, BCH]), st.data(), deltas, heights)
def test_asert_stays_within_one_and_the_limit(
    params: ConsensusParams, data: st.DataObject, time: int, height: int
) -> None:
    anchor = data.draw(st.integers(1, params.pow_limit))
    assert 1 <= asert_target(anchor, time, height, params) <= params.pow_limit


def test_asert_extreme_drift_saturates_without_huge_numbers() -> None:
    assert asert_target(1, 2**200, 0, DEVNET) == DEVNET.pow_limit
    assert asert_target(DEVNET.pow_limit, -(2**200), 0, DEVNET) == 1


# --- next_bits -----------------------------------------------------------------------------


@given(st.integers(0, 2**64), st.integers(0, 2**64))
def test_regtest_never_retargets(height: int, timestamp: int) -> None:
    assert next_bits(height, timestamp, REGTEST) == REGTEST.pow_limit_bits


def test_devnet_block_one_gets_the_genesis_bits() -> None:
    assert next_bits(0, DEVNET.genesis_timestamp_ms, DEVNET) == DEVNET.pow_limit_bits


@given(st.integers(0, 10**9))
def test_devnet_on_schedule_keeps_the_genesis_bits(height: int) -> None:
    timestamp = DEVNET.genesis_timestamp_ms + DEVNET.target_spacing_ms * height
    assert next_bits(height, timestamp, DEVNET) == DEVNET.pow_limit_bits


def test_devnet_runs_a_halflife_early_halves_and_late_stays_at_the_limit() -> None:
    height = DEVNET.halflife_ms // DEVNET.target_spacing_ms  # 120 blocks in 0 ms
    early = next_bits(height, DEVNET.genesis_timestamp_ms, DEVNET)
    assert bits_to_target(early) == DEVNET.pow_limit // 2
    late = next_bits(1, DEVNET.genesis_timestamp_ms + 10 * DEVNET.halflife_ms, DEVNET)
    assert late == DEVNET.pow_limit_bits


def test_genesis_bits_encode_the_pow_limit() -> None:
    for params in (REGTEST, DEVNET):
        assert bits_to_target(params.pow_limit_bits) == params.pow_limit
        assert target_to_bits(params.pow_limit) == params.pow_limit_bits
