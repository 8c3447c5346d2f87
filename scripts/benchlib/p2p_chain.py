"""A long chain for the join figure, given to a node as fast as this machine allows.

Transactions are signed in worker processes (about 0.4 ms each here, mostly Ed25519 and
canonical JSON), a chunk of blocks at a time, while this process assembles each block
(Merkle root, header, the two hashes a regtest block needs) and pushes it to the node
with ``POST /p2p/blocks`` within a peer session (``benchlib.peer_session``): the node
checks it exactly as it would a peer's block.

Pushing finished blocks was the fastest way found: on this machine (2 CPUs, busy) 300
blocks of 10 transactions took 22 ms a block, against 30 ms for
``POST /v1/transactions/batch`` of 10 then ``POST /v1/admin/mine {"blocks": 1}`` (two
requests a block instead of one). ``/v1/admin/mine`` with several blocks cannot help: a
mined block takes up to 2,000 transactions from the pool, not 10.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import time
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass

import httpx

from benchlib.peer_session import open_session
from benchlib.txs import TxFactory, message_of
from consensus.block import ZERO_HASH, Header
from consensus.merkle import merkle_root
from consensus.params import REGTEST
from consensus.pow import bits_to_target
from node.miner import mine_once

__all__ = ["BuiltChain", "build_chain", "sample_message"]

CHUNK_BLOCKS = 50
"""Blocks a worker signs per task (500 transactions): big enough to amortise the pickling."""
SIGNERS = 2
LOOKAHEAD = 2 * SIGNERS
"""Chunks signed ahead of the pushes: enough to keep the node busy, few to stop early."""
JSON = {"content-type": "application/json"}

SignedBlock = tuple[str, str]
"""A block's Merkle root (hex) and its transactions as a JSON array, ready to send."""


def _chunk_factory(chunk: int) -> TxFactory:
    """One signer per chunk, so that workers never share a (signer, nonce) pair."""
    return TxFactory(seed=hashlib.sha256(f"join-chunk-{chunk}".encode()).digest())


def sign_blocks(chunk: int, blocks: int, per_block: int) -> list[SignedBlock]:
    """Worker: ``blocks`` blocks of ``per_block`` fresh dataset records, ready to send."""
    txs = _chunk_factory(chunk).datasets(blocks * per_block, f"join-{chunk}")
    out = []
    for i in range(0, len(txs), per_block):
        block_txs = txs[i : i + per_block]
        root = merkle_root([tx.leaf_bytes for tx in block_txs]).hex()
        out.append((root, json.dumps([tx.to_json() for tx in block_txs])))
    return out


def sample_message() -> bytes:
    """The signed message of a transaction like the chain's (for the bare-verify baseline)."""
    return message_of(_chunk_factory(-1).datasets(1, "join-sample")[0])


@dataclass(frozen=True)
class BuiltChain:
    blocks: int
    """Blocks pushed (the node's height: it started at genesis)."""
    txs: int
    seconds: float
    wanted: int
    tip: str

    @property
    def complete(self) -> bool:
        return self.blocks == self.wanted

    def describe(self) -> str:
        size = f"{self.blocks:,} blocks x {self.txs // max(1, self.blocks)} txs"
        cut = "" if self.complete else f" (asked for {self.wanted:,}: the build budget ran out)"
        return (
            f"source chain {size}{cut}, built in {self.seconds:.0f} s "
            f"({self.blocks / self.seconds:,.0f} blocks/s signed in {SIGNERS} processes, "
            "pushed one by one with POST /p2p/blocks)"
        )


class _Pusher:
    """Extends the node's chain one finished block at a time."""

    def __init__(self, client: httpx.Client) -> None:
        status = client.get("/v1/status").raise_for_status().json()
        self.client = client
        self.headers = {**JSON, **open_session(client)}
        self.tip: str = status["best_hash"]
        self.height: int = status["height"]
        self.timestamp = 0

    def push(self, root: str, txs_json: str) -> None:
        # Past the parent's timestamp (hence past the median time past) and never ahead of
        # the clock: the node would hold a too-new block back.
        self.timestamp = max(time.time_ns() // 1_000_000, self.timestamp + 1)
        header = Header(
            version=1,
            height=self.height + 1,
            prev_hash=self.tip,
            merkle_root=root,
            timestamp=self.timestamp,
            bits=REGTEST.pow_limit_bits,  # regtest never retargets
            miner=ZERO_HASH,
            nonce=0,
        )
        header = mine_once(header, bits_to_target(header.bits))
        body = f'{{"header": {json.dumps(header.to_json())}, "transactions": {txs_json}}}'
        answer = self.client.post("/p2p/blocks", content=body.encode(), headers=self.headers)
        result = answer.raise_for_status().json()
        if result.get("status") != "accepted":
            raise RuntimeError(f"block {header.height} not accepted: {result}")
        self.tip, self.height = header.hash, header.height


def build_chain(client: httpx.Client, blocks: int, per_block: int, budget_s: float) -> BuiltChain:
    """Give the node behind ``client`` ``blocks`` blocks of ``per_block`` transactions, or
    as many as fit in ``budget_s`` seconds."""
    start = time.monotonic()
    deadline = start + budget_s
    pusher = _Pusher(client)
    first = pusher.height
    chunks = deque(range(0, blocks, CHUNK_BLOCKS))
    pending: deque[Future[list[SignedBlock]]] = deque()
    context = multiprocessing.get_context("spawn")  # no fork of a process with threads
    with ProcessPoolExecutor(SIGNERS, mp_context=context) as pool:
        try:
            while (chunks or pending) and time.monotonic() < deadline:
                while chunks and len(pending) < LOOKAHEAD:
                    chunk = chunks.popleft()
                    count = min(CHUNK_BLOCKS, blocks - chunk)
                    pending.append(pool.submit(sign_blocks, chunk, count, per_block))
                for root, txs_json in pending.popleft().result():
                    pusher.push(root, txs_json)
                    if time.monotonic() >= deadline:
                        break
        finally:
            pool.shutdown(cancel_futures=True)  # stopped early: drop the chunks not started
    built = pusher.height - first
    return BuiltChain(built, built * per_block, time.monotonic() - start, blocks, pusher.tip)
