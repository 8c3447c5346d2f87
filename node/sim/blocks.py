"""Blocks for the simulator: real headers over synthetic transactions, and who mines next.

A block carries a real 128-byte header (``consensus.block.Header``) that passes
``check_header`` and ``contextual_check_header``: regtest difficulty, so the proof of
work is a real one found in a couple of hashes. What is abstracted is the search's
*time*: blocks come as a Poisson process (exponential gaps of mean ``interval``), each
found by a miner picked by its share of the hash power. The transactions are not real
(no signatures, no ledger): each block holds ``txs`` leaves of the size of a real signed
transaction, the merkle root commits to them, and the block's wire size counts them.
Blocks are immutable and shared by every node: no node copies one.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass

from consensus.block import Header
from consensus.keys import private_key_from_seed
from consensus.merkle import merkle_root
from consensus.params import ConsensusParams
from consensus.pow import bits_to_target, solve
from consensus.tx import sign_tx

__all__ = ["SimBlock", "Miners", "make_block", "sample_tx_bytes"]

_HEADER_JSON_BYTES = 420
"""``{"hash", "header": {...}}`` of a block, without its transactions."""


@dataclass(frozen=True, slots=True)
class SimBlock:
    header: Header
    txs: int
    size: int
    """Bytes of the block's JSON form, as ``POST /p2p/blocks`` carries it."""
    miner: int
    """The node that mined it."""

    @property
    def hash(self) -> str:
        return self.header.hash


def sample_tx_bytes(params: ConsensusParams) -> int:
    """The JSON size of a real signed dataset registration (fixed key: deterministic)."""
    key = private_key_from_seed(bytes(32))
    tx = sign_tx(
        key,
        network=params.network,
        kind="dataset",
        payload={"name": "simulated-corpus", "digest": "sha256:" + "ab" * 32},
        nonce=1,
        timestamp=params.genesis_timestamp_ms,
    )
    return len(json.dumps(tx.to_json(), separators=(",", ":")))


def make_block(
    parent: Header, miner: int, miner_key: str, timestamp: int, txs: int, tx_bytes: int
) -> SimBlock:
    """A valid regtest block on ``parent`` (its nonce really meets the target)."""
    leaves = [hashlib.sha256(f"{parent.hash}:{miner}:{i}".encode()).digest() for i in range(txs)]
    draft = Header(
        version=1,
        height=parent.height + 1,
        prev_hash=parent.hash,
        merkle_root=merkle_root(leaves).hex(),
        timestamp=timestamp,
        bits=parent.bits,
        miner=miner_key,
        nonce=0,
    )
    nonce = solve(draft.prefix(), bits_to_target(draft.bits), 0, 1 << 20)
    assert nonce is not None  # regtest: about two tries
    header = draft.with_nonce(nonce)
    return SimBlock(header, txs, _HEADER_JSON_BYTES + txs * (tx_bytes + 1), miner)


class Miners:
    """Who finds the next block and when: exponential gaps of mean ``interval_us``, the
    finder drawn by hash-power share (Zipf-like: the k-th largest miner has 1/k)."""

    def __init__(self, nodes: list[int], interval_us: int, rng: random.Random) -> None:
        self.nodes = nodes
        weights = [1 / (rank + 1) for rank in range(len(nodes))]
        total = sum(weights)
        self.shares = [w / total for w in weights]
        self.interval_us = interval_us
        self.rng = rng

    def next_gap(self) -> int:
        return max(1, round(self.rng.expovariate(1 / self.interval_us)))

    def next_miner(self) -> int:
        return self.rng.choices(self.nodes, weights=self.shares)[0]

    @staticmethod
    def key(node: int) -> str:
        return hashlib.sha256(f"ailedger-sim-miner-{node}".encode()).hexdigest()
