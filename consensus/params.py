"""Consensus parameters: frozen data, passed explicitly to every rule.

Like Bitcoin's ``Consensus::Params``: there is no settings singleton. A node picks a
preset by network name and hands it to each function that needs it, so one process can
run nodes of several networks side by side (the tests do).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEVNET", "NETWORKS", "REGTEST", "ConsensusParams", "params_for"]

GENESIS_TIMESTAMP_MS = 1_795_824_000_000  # 2026-11-28T00:00:00Z


@dataclass(frozen=True, slots=True)
class ConsensusParams:
    network: str
    pow_limit_bits: int
    """Compact encoding of the easiest allowed target; also the genesis block's bits."""
    retarget: bool
    """False: every block carries ``pow_limit_bits``. True: ASERT anchored at genesis."""
    target_spacing_ms: int
    halflife_ms: int
    max_future_ms: int
    genesis_nonce: int
    """The lowest nonce that makes the genesis header meet ``pow_limit`` (checked by tests)."""
    genesis_timestamp_ms: int = GENESIS_TIMESTAMP_MS
    max_block_txs: int = 2000
    max_block_bytes: int = 1 << 20
    max_tx_bytes: int = 8192
    median_time_span: int = 11

    @property
    def pow_limit(self) -> int:
        """The easiest target, expanded from ``pow_limit_bits`` (Bitcoin's nBits form)."""
        size = self.pow_limit_bits >> 24
        word = self.pow_limit_bits & 0x007FFFFF
        return word >> (8 * (3 - size)) if size <= 3 else word << (8 * (size - 3))


REGTEST = ConsensusParams(
    network="regtest",
    pow_limit_bits=0x207FFFFF,  # about two hashes a block
    retarget=False,
    target_spacing_ms=1_000,
    halflife_ms=600_000,
    max_future_ms=120_000,
    genesis_nonce=1,
)

DEVNET = ConsensusParams(
    network="devnet",
    pow_limit_bits=0x1E035AFE,  # ~5.0e6 hashes a block: one Python miner, about 5 s
    retarget=True,
    target_spacing_ms=5_000,
    halflife_ms=600_000,
    max_future_ms=120_000,
    genesis_nonce=8_812_402,
)

NETWORKS: dict[str, ConsensusParams] = {p.network: p for p in (REGTEST, DEVNET)}


def params_for(network: str) -> ConsensusParams:
    """The preset for ``network``; ``KeyError`` names the known ones."""
    try:
        return NETWORKS[network]
    except KeyError:
        raise KeyError(f"unknown network {network!r}; known: {', '.join(NETWORKS)}") from None
