"""The genesis block of each network: fixed, deterministic, and the network's identity.

Timestamp 2026-11-28T00:00:00Z, no transactions, a zero miner, bits = pow_limit_bits and
the lowest nonce that meets the proof of work (``params.genesis_nonce``, pinned by a test
that searches every lower nonce). Peers whose genesis hash differs are another network.
"""

from __future__ import annotations

from consensus.block import ZERO_HASH, Block, Header
from consensus.merkle import merkle_root
from consensus.params import ConsensusParams

__all__ = ["genesis_block", "genesis_header"]


def genesis_header(params: ConsensusParams, *, nonce: int | None = None) -> Header:
    """The genesis header; ``nonce`` overrides the pinned one (used to re-derive it)."""
    return Header(
        version=1,
        height=0,
        prev_hash=ZERO_HASH,
        merkle_root=merkle_root([]).hex(),
        timestamp=params.genesis_timestamp_ms,
        bits=params.pow_limit_bits,
        miner=ZERO_HASH,
        nonce=params.genesis_nonce if nonce is None else nonce,
    )


def genesis_block(params: ConsensusParams) -> Block:
    return Block(header=genesis_header(params), transactions=())
