"""One block or one transaction at a time, through the node's batch calls."""

from __future__ import annotations

from collections.abc import Container

from consensus.block import Block
from consensus.tx import Transaction
from node.chainstate import BlockResult, ChainState
from node.store import Store

__all__ = ["connect_block", "mempool_add", "process_block"]


def process_block(
    chain: ChainState, block: Block, *, verified: Container[str] = frozenset()
) -> BlockResult:
    """``ChainState.process_blocks`` of one block."""
    return chain.process_blocks([(block, verified)])[0]


def connect_block(store: Store, block: Block) -> None:
    """``Store.connect_blocks`` of one block."""
    store.connect_blocks([block])


def mempool_add(store: Store, tx: Transaction, received_ms: int) -> None:
    """``Store.mempool_add_many`` of one transaction."""
    store.mempool_add_many([tx], received_ms)
