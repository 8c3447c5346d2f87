"""Consensus hot paths in this process: the nonce search, tx verification, Merkle roots."""

from __future__ import annotations

import hashlib

from benchlib.baselines import PREFIX, UNREACHABLE, bare_midstate_run, bare_verify_run
from benchlib.report import Figure, Goal
from benchlib.timing import best_rates, human_rate, median_ms
from benchlib.txs import TxFactory, message_of
from consensus.merkle import merkle_root
from consensus.pow import solve
from consensus.tx import Transaction, verify_signature

__all__ = ["bench_merkle", "bench_solve", "bench_verify"]

SECTION = "consensus"
SOLVE_HASHES = 1_000_000
REPEATS = 5
"""Best of 5, taking turns with the baseline: fewer runs are at the mercy of a busy machine."""
VERIFY_COUNT = 2_000
MERKLE_LEAVES = 2_000
MERKLE_LEAF_BYTES = 300
MERKLE_REPEATS = 20


def bench_solve() -> list[Figure]:
    """Figure 1: ``consensus.pow.solve`` against the plain midstate loop, same work."""

    def solve_run() -> None:
        solve(PREFIX, UNREACHABLE, 0, SOLVE_HASHES)

    solve_rate, bare_rate = best_rates(
        [solve_run, bare_midstate_run(SOLVE_HASHES)], SOLVE_HASHES, REPEATS
    )
    detail = (
        f"solve {human_rate(solve_rate, 'H/s')}, bare loop {human_rate(bare_rate, 'H/s')}; "
        f"{SOLVE_HASHES:,} hashes, best of {REPEATS} each, taking turns"
    )
    name = "pow.solve hashes/s / bare midstate loop"
    return [Figure("1", SECTION, name, solve_rate / bare_rate, "x", Goal(">=", 0.9), detail)]


def bench_verify() -> list[Figure]:
    """Figure 2: parse + canonicalise + verify a model tx, against a bare Ed25519 verify."""
    tx = TxFactory().model("resnet-bench")
    obj = tx.to_json()

    def tx_run() -> None:
        for _ in range(VERIFY_COUNT):
            verify_signature(Transaction.from_json(obj))

    message_len = len(message_of(tx))
    bare_run = bare_verify_run(message_len, VERIFY_COUNT)
    tx_rate, bare_rate = best_rates([tx_run, bare_run], VERIFY_COUNT, REPEATS)
    detail = (
        f"from_json+verify_signature {tx_rate:,.0f}/s, bare verify {bare_rate:,.0f}/s; "
        f"model tx of {tx.size} bytes (signed message {message_len} bytes), best of {REPEATS}"
    )
    name = "tx verifications/s / bare Ed25519 verify/s"
    return [Figure("2", SECTION, name, tx_rate / bare_rate, "x", Goal(">=", 0.7), detail)]


def _leaves(count: int, size: int) -> list[bytes]:
    """Deterministic leaves of ``size`` bytes (SHA-256 output stretched)."""
    leaves = []
    for i in range(count):
        seed = hashlib.sha256(i.to_bytes(4, "big")).digest()
        leaves.append((seed * (size // 32 + 1))[:size])
    return leaves


def bench_merkle() -> list[Figure]:
    """Figure 3: the Merkle root of a full block's worth of typical leaves."""
    leaves = _leaves(MERKLE_LEAVES, MERKLE_LEAF_BYTES)
    elapsed = median_ms(lambda: merkle_root(leaves), MERKLE_REPEATS)
    detail = f"{MERKLE_LEAVES:,} leaves of {MERKLE_LEAF_BYTES} bytes, median of {MERKLE_REPEATS}"
    return [Figure("3", SECTION, "merkle_root of 2,000 leaves", elapsed, "ms", None, detail)]
