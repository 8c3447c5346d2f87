"""Block validity, in the order a node applies it.

1. ``check_header`` / ``check_block`` are context-free: version, proof of work, size
   limits, Merkle root, and every transaction well-formed, on this network and signed.
2. ``contextual_check_header`` needs the parent: height, the retarget rule's bits, a
   timestamp past the median of the previous 11 blocks and not too far past the local
   clock. A too-new header raises ``BlockTooNew``: not invalid, only early.
3. ``apply_block_ledger`` applies the ledger rules of every transaction in block order
   onto an ``Overlay`` of the chain so far (see ``consensus.ledger``).

Failures raise ``InvalidBlock`` with a stable reject code; a transaction's own reject code
is kept, so "bad-signature" means the same inside a block as on its own.
"""

from __future__ import annotations

from collections.abc import Container
from typing import Protocol

from consensus.block import Block, Header
from consensus.errors import BlockTooNew, InvalidBlock, InvalidTx
from consensus.ledger import Overlay
from consensus.merkle import merkle_root
from consensus.params import ConsensusParams
from consensus.pow import check_pow, next_bits
from consensus.tx import check_tx

__all__ = [
    "ParentInfo",
    "apply_block_ledger",
    "check_block",
    "check_header",
    "contextual_check_header",
    "signatures_worth_checking",
]

BLOCK_VERSION = 1


class ParentInfo(Protocol):
    """What the contextual rules need to know of a block's parent."""

    @property
    def height(self) -> int: ...

    @property
    def timestamp(self) -> int: ...


def check_header(header: Header, params: ConsensusParams) -> None:
    """Context-free header rules: version and proof of work."""
    if header.version != BLOCK_VERSION:
        raise InvalidBlock("bad-version", f"block version {header.version} is not {BLOCK_VERSION}")
    check_pow(bytes.fromhex(header.hash), header.bits, params)


def check_block(
    block: Block, params: ConsensusParams, *, verified: Container[str] = frozenset()
) -> None:
    """Context-free block rules. ``verified`` names txids whose signatures were already
    checked (the mempool's), so a block of known transactions is not verified twice."""
    check_header(block.header, params)
    txs = block.transactions
    if len(txs) > params.max_block_txs:
        raise InvalidBlock("bad-blk-length", f"{len(txs)} transactions > {params.max_block_txs}")
    leaves = block.leaves()
    size = sum(map(len, leaves))
    if size > params.max_block_bytes:
        raise InvalidBlock(
            "bad-blk-size", f"{size} bytes of transactions > {params.max_block_bytes}"
        )
    txids = [tx.txid for tx in txs]
    if len(set(txids)) != len(txids):
        raise InvalidBlock("bad-txns-duplicate", "a transaction appears twice in the block")
    if merkle_root(leaves).hex() != block.header.merkle_root:
        raise InvalidBlock("bad-merkle-root", "merkle root does not match the transactions")
    for tx in txs:
        if tx.txid in verified:
            continue
        try:
            check_tx(tx, params)
        except InvalidTx as exc:
            raise InvalidBlock(
                exc.code, f"transaction {tx.txid}: {exc.message}", txid=tx.txid
            ) from exc


def signatures_worth_checking(block: Block, params: ConsensusParams) -> bool:
    """False when ``check_block`` refuses the block before any signature (too many
    transactions, or a header without its proof of work, which is cheap to check): then
    checking its signatures first would be work a junk block makes us do for nothing."""
    if len(block.transactions) > params.max_block_txs:
        return False
    try:
        check_header(block.header, params)
    except InvalidBlock:
        return False
    return True


def contextual_check_header(
    header: Header,
    parent: ParentInfo,
    median_time_past: int,
    now_ms: int,
    params: ConsensusParams,
) -> None:
    """Rules against the parent; ``median_time_past`` is of the parent and its 10 ancestors."""
    if header.height != parent.height + 1:
        raise InvalidBlock("bad-height", f"height {header.height} after parent {parent.height}")
    expected = next_bits(parent.height, parent.timestamp, params)
    if header.bits != expected:
        raise InvalidBlock("bad-diffbits", f"bits {header.bits:#010x}, expected {expected:#010x}")
    if header.timestamp <= median_time_past:
        raise InvalidBlock(
            "time-too-old", f"timestamp {header.timestamp} <= median time past {median_time_past}"
        )
    limit = now_ms + params.max_future_ms
    if header.timestamp > limit:
        raise BlockTooNew(header.timestamp, limit)


def apply_block_ledger(overlay: Overlay, block: Block) -> None:
    """Apply the ledger rules to the block's transactions in order, onto ``overlay`` (which
    may hold the blocks before it in a run); ``InvalidBlock`` at the first failure."""
    try:
        for tx in block.transactions:
            overlay.apply(tx)
    except InvalidTx as exc:
        raise InvalidBlock(
            exc.code, f"transaction {exc.txid}: {exc.message}", txid=exc.txid
        ) from exc
