"""The chain service as the peer-to-peer layer and the miner see it: a port, not the class.

``node.daemon.Node`` implements ``ChainPort``; ``node.p2p`` and ``node.mining`` take one
and never import the daemon (Bitcoin's ``PeerManager(ChainstateManager&, CTxMemPool&)``),
so nothing in ``node/`` imports in a circle. They learn what changed by subscribing to
the node's event lists (Bitcoin's ``CValidationInterface``): ``block_listeners`` (blocks
joined the active chain), ``tip_listeners`` (the tip moved), ``tx_listeners`` (new
transactions in the mempool), ``sync_listeners`` (``syncing`` flipped); they join
``services`` to start and stop with it and ``gauges`` to refresh with its metrics.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol, TypeVar

if TYPE_CHECKING:
    from consensus.block import Block
    from consensus.params import ConsensusParams
    from consensus.tx import Transaction
    from node.chainstate import BlockResult, ChainState, Reorg
    from node.checkpool import CheckPool
    from node.config import Settings
    from node.mempool import Mempool
    from node.metrics import Metrics
    from node.store import Store, StoreReader

__all__ = ["ChainPort", "Service", "TxOutcome"]

P = ParamSpec("P")
T = TypeVar("T")


class Service(Protocol):
    """Something that runs with the node (its p2p layer, its miner)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class TxOutcome(Protocol):
    """What the mempool made of one submitted transaction."""

    txid: str
    status: str

    @property
    def error(self) -> Any: ...


class ChainPort(Protocol):
    """The chain service: its state, its one write path for blocks and transactions, and
    its events."""

    settings: Settings
    params: ConsensusParams
    genesis_hash: str
    node_id: str
    miner_pub: str
    syncing: bool
    network_active: bool
    closing: bool
    metrics: Metrics
    store: Store
    chain: ChainState
    mempool: Mempool
    checks: CheckPool
    block_listeners: list[Callable[[Reorg], Awaitable[None]]]
    tx_listeners: list[Callable[[list[Transaction], str | None], Awaitable[None]]]
    tip_listeners: list[Callable[[], Awaitable[None]]]
    sync_listeners: list[Callable[[], Awaitable[None]]]
    gauges: list[Callable[[], None]]
    services: list[Service]
    clock: Callable[[], int]

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T: ...

    def reader(self) -> AbstractContextManager[StoreReader]: ...

    async def set_syncing(self, syncing: bool) -> None: ...

    async def submit_block(
        self, block: Block, *, verified: frozenset[str] | None = None
    ) -> BlockResult: ...

    async def submit_blocks(
        self,
        blocks: Sequence[Block],
        *,
        verified: Sequence[frozenset[str]] | None = None,
        synced: bool = False,
    ) -> list[BlockResult]: ...

    async def submit_transactions(
        self, objs: Sequence[Any], *, source: str | None = None
    ) -> Sequence[TxOutcome]: ...
