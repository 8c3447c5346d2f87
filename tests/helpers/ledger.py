"""The ledger rules of a block's transactions on a fresh overlay (the node applies them
with ``consensus.validation.apply_block_ledger`` onto an overlay of a whole run)."""

from __future__ import annotations

from collections.abc import Iterable

from consensus.block import Block
from consensus.ledger import LedgerView, Overlay
from consensus.tx import Transaction
from consensus.validation import apply_block_ledger

__all__ = ["apply_block_txs", "connect_block_ledger"]


def connect_block_ledger(view: LedgerView, block: Block) -> Overlay:
    """The ledger rules applied to the block's transactions in order, on an overlay of
    ``view``; ``InvalidBlock`` at the first failure."""
    overlay = Overlay(view)
    apply_block_ledger(overlay, block)
    return overlay


def apply_block_txs(view: LedgerView, txs: Iterable[Transaction]) -> Overlay:
    """``txs`` applied in order on an overlay of ``view``; ``InvalidTx`` at the first failure."""
    overlay = Overlay(view)
    for tx in txs:
        overlay.apply(tx)
    return overlay
