"""Proof of work: compact targets, block work, the PoW check, the nonce search, and ASERT.

Rules (design §3, normative):

- ``bits`` is Bitcoin's compact "nBits" encoding of a 256-bit target: the top byte is a
  byte length ``size``, the low 23 bits a mantissa ``word``; target = ``word`` shifted to
  ``size`` bytes. A bits value is invalid ("bad-diffbits") when it is not a u32, when it
  is negative-encoded (sign bit 0x00800000 with a non-zero mantissa), when it overflows
  256 bits, or when its target is zero.
- A header meets its proof of work when ``int.from_bytes(hash, "big") <= target(bits)``
  ("high-hash" otherwise) and ``target(bits) <= params.pow_limit`` ("bad-diffbits").
- The work of a block is ``2**256 // (target + 1)``: the expected number of hashes to
  find it. Chain work is the sum over the chain.
- Difficulty: regtest keeps ``params.pow_limit_bits`` for every block. Other networks use
  ASERT ("aserti3-2d", Bitcoin Cash's integer algorithm) anchored at the genesis block,
  clamped to ``params.pow_limit``.

The anchor choice: Bitcoin Cash anchors at a block whose *parent's* time is the reference.
Here the anchor is genesis itself and genesis's own timestamp stands in for that parent
time, so the block at height ``h`` whose parent is ``P`` gets

    asert_target(genesis_target, P.timestamp - genesis.timestamp, P.height, params)

A parent exactly on schedule (``P.timestamp == genesis.timestamp + spacing * P.height``)
gives the genesis target unchanged; block 1 (parent = genesis) always gets it.
"""

from __future__ import annotations

import hashlib
from itertools import repeat
from typing import TYPE_CHECKING, Literal

from consensus.errors import InvalidBlock

if TYPE_CHECKING:  # params imports this module: a runtime import would be circular
    from consensus.params import ConsensusParams

__all__ = [
    "MAX_NONCE",
    "asert_target",
    "bits_to_target",
    "block_work",
    "check_pow",
    "next_bits",
    "solve",
    "target_to_bits",
]

MAX_NONCE = 2**53
"""Nonces are below 2**53 so that they survive a JSON round trip as I-JSON numbers."""

_U256 = 2**256
_SIGN_BIT = 0x00800000
_MANTISSA = 0x007FFFFF

# aserti3-2d's cubic approximation of 2**x - 1 on [0, 1), in 16.48 fixed point
# (the coefficients of the Bitcoin Cash specification, which consensus must match exactly).
_ASERT_C1 = 195_766_423_245_049
_ASERT_C2 = 971_821_376
_ASERT_C3 = 5_127
_ASERT_ROUND = 1 << 47
# A shift this large always exceeds any pow_limit (< 2**256): the factor is >= 2**16 and the
# result >= 2**shifts. Returning early keeps a wild timestamp from allocating a huge integer.
_ASERT_MAX_SHIFT = 256


def bits_to_target(bits: int) -> int:
    """The target encoded by ``bits`` (Bitcoin's ``arith_uint256::SetCompact``).

    Raises ``InvalidBlock("bad-diffbits")`` when ``bits`` is not a u32, is negative-encoded,
    overflows 256 bits, or encodes a zero target (``DeriveTarget``'s rejections).
    """
    if type(bits) is not int or not 0 <= bits <= 0xFFFFFFFF:
        raise InvalidBlock("bad-diffbits", f"bits {bits!r} is not a u32")
    size = bits >> 24
    word = bits & _MANTISSA
    if size <= 3:
        word >>= 8 * (3 - size)  # as in C++, the flags below see the shifted mantissa
        target = word
    else:
        target = word << (8 * (size - 3))
    if word and bits & _SIGN_BIT:
        raise InvalidBlock("bad-diffbits", f"bits {bits:#010x} encodes a negative target")
    if word and (size > 34 or (word > 0xFF and size > 33) or (word > 0xFFFF and size > 32)):
        raise InvalidBlock("bad-diffbits", f"bits {bits:#010x} overflows 256 bits")
    if target == 0:
        raise InvalidBlock("bad-diffbits", f"bits {bits:#010x} encodes a zero target")
    return target


def target_to_bits(target: int) -> int:
    """The normalised compact encoding of ``target`` (Bitcoin's ``GetCompact``).

    Keeps the top two or three bytes: decoding gives ``target`` with its low bits cleared.
    Raises ``ValueError`` unless ``1 <= target < 2**256``.
    """
    if not 1 <= target < _U256:
        raise ValueError(f"target must be in [1, 2**256), got {target}")
    size = (target.bit_length() + 7) // 8
    word = target << (8 * (3 - size)) if size <= 3 else target >> (8 * (size - 3))
    if word & _SIGN_BIT:
        # The mantissa's top bit is the sign: move it down a byte rather than encode a
        # negative number.
        word >>= 8
        size += 1
    return (size << 24) | word


def block_work(target: int) -> int:
    """Expected hashes to meet ``target``: ``2**256 // (target + 1)``."""
    return _U256 // (target + 1)


def check_pow(header_hash: bytes, bits: int, params: ConsensusParams) -> None:
    """Check that a header's hash meets its ``bits`` and that ``bits`` is allowed at all.

    Raises ``InvalidBlock("bad-diffbits")`` for invalid bits or a target above
    ``params.pow_limit``, ``InvalidBlock("high-hash")`` when the hash, read as a big-endian
    integer, exceeds the target.
    """
    if len(header_hash) != 32:
        raise ValueError(f"a header hash is 32 bytes, got {len(header_hash)}")
    target = bits_to_target(bits)
    if target > params.pow_limit:
        raise InvalidBlock("bad-diffbits", f"bits {bits:#010x} is easier than the pow limit")
    if int.from_bytes(header_hash, "big") > target:
        raise InvalidBlock("high-hash", "proof of work does not meet the target")


def solve(prefix: bytes, target: int, start: int, count: int) -> int | None:
    """The lowest nonce in ``[start, start + count)`` (and below ``MAX_NONCE``) whose header
    hash ``SHA-256(prefix + nonce.to_bytes(8, "big"))`` is ``<= target``, or ``None``.

    ``prefix`` is the header's first 120 bytes. It is hashed once (the midstate); each try
    copies that state and feeds only the 8 nonce bytes.
    """
    if not 0 <= target < _U256:
        raise ValueError(f"target must be in [0, 2**256), got {target}")
    if start < 0:
        raise ValueError(f"start must be >= 0, got {start}")
    # Equal-length big-endian byte strings compare like the integers they encode, so the
    # loop never converts a digest to an int.
    target_bytes = target.to_bytes(32, "big")
    midstate = hashlib.sha256(prefix)
    # Bind every callable to a local and let map() produce the nonce bytes in C: this loop
    # is the miner's whole cost, so nothing in it may look up an attribute.
    copy = midstate.copy
    hash_type = type(midstate)
    update = hash_type.update
    digest = hash_type.digest
    big: Literal["big"] = "big"
    nonces = range(start, min(start + count, MAX_NONCE))
    for nonce8 in map(int.to_bytes, nonces, repeat(8), repeat(big)):
        state = copy()
        update(state, nonce8)
        if digest(state) <= target_bytes:
            return int.from_bytes(nonce8, "big")
    return None


def _asert_exponent(time_delta_ms: int, height_delta: int, params: ConsensusParams) -> int:
    """How far ahead of (+) or behind (-) schedule, in halflives, as 16.16 fixed point."""
    numerator = (time_delta_ms - params.target_spacing_ms * height_delta) * 65536
    # C++ integer division truncates toward zero; Python's // floors. Consensus needs the
    # C++ result bit for bit (the Bitcoin Cash test vectors depend on it).
    quotient = abs(numerator) // params.halflife_ms
    return quotient if numerator >= 0 else -quotient


def asert_target(
    anchor_target: int, time_delta_ms: int, height_delta: int, params: ConsensusParams
) -> int:
    """ASERT ("aserti3-2d"): the anchor target scaled by ``2**(drift / halflife)``.

    ``drift = time_delta_ms - params.target_spacing_ms * height_delta``: the target doubles
    for every halflife the chain runs late and halves for every halflife it runs early.
    Integer-only, as Bitcoin Cash specifies: exponent in 16.16 fixed point (truncating
    division), ``2**frac`` from a cubic, then a shift. The result is clamped to
    ``[1, params.pow_limit]``.
    """
    exponent = _asert_exponent(time_delta_ms, height_delta, params)
    shifts = exponent >> 16  # arithmetic shift: floor, as in C++ on int64
    frac = exponent & 0xFFFF
    factor = 65536 + (
        (_ASERT_C1 * frac + _ASERT_C2 * frac**2 + _ASERT_C3 * frac**3 + _ASERT_ROUND) >> 48
    )
    if shifts >= _ASERT_MAX_SHIFT:
        return params.pow_limit
    target = anchor_target * factor
    target = target << shifts if shifts >= 0 else target >> -shifts
    target >>= 16
    if target == 0:
        return 1
    return min(target, params.pow_limit)


def next_bits(parent_height: int, parent_timestamp: int, params: ConsensusParams) -> int:
    """The ``bits`` a block must carry given its parent's height and timestamp.

    Regtest (``params.retarget`` false): always ``params.pow_limit_bits``. Otherwise ASERT
    anchored at genesis, whose bits are ``params.pow_limit_bits`` and whose timestamp is
    ``params.genesis_timestamp_ms`` (see the module docstring).
    """
    if not params.retarget:
        return params.pow_limit_bits
    target = asert_target(
        bits_to_target(params.pow_limit_bits),
        parent_timestamp - params.genesis_timestamp_ms,
        parent_height,
        params,
    )
    return target_to_bits(target)
