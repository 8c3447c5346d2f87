"""A simulated node's chain: the real block tree and fork choice, without storage.

``consensus.chain.BlockTree`` holds the headers, their statuses and the most-work
candidate; ``check_header`` and ``contextual_check_header`` accept each header exactly as
``node.chainstate.ChainState`` does; the tip moves to ``best_candidate`` after each body.
What ``ChainState`` adds around this (the SQLite store, the ledger rules of the
transactions, signature checks) is what the simulator abstracts: an honest block's body
is taken as valid once its header is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from consensus.block import Header
from consensus.chain import BlockTree, Entry, Status
from consensus.errors import BlockNotFound, BlockTooNew, InvalidBlock
from consensus.genesis import genesis_header
from consensus.params import ConsensusParams
from consensus.validation import check_header, contextual_check_header
from node.chainstate import BlockOutcome, header_work
from node.p2p.headersync import missing_bodies

__all__ = ["Accepted", "SimChain"]


@dataclass(slots=True)
class Accepted:
    """What one body did: its outcome, and the blocks that joined the active chain."""

    outcome: BlockOutcome
    connected: list[Entry] = field(default_factory=list)
    disconnected: int = 0


class SimChain:
    def __init__(self, params: ConsensusParams, genesis: Header | None = None) -> None:
        self.params = params
        genesis = genesis or genesis_header(params)
        self.tree = BlockTree(genesis, header_work(genesis))
        self.tip: Entry = self.tree.genesis

    def process_header(self, header: Header, now_ms: int) -> Entry:
        """The header's entry; ``InvalidBlock``, ``BlockTooNew`` or ``BlockNotFound`` (unknown
        parent) as ``ChainState.process_header`` raises them."""
        tree = self.tree
        known = tree.get(header.hash)
        if known is not None:
            if known.status is Status.INVALID:
                raise InvalidBlock("duplicate-invalid", f"block {header.hash} is known invalid")
            return known
        check_header(header, self.params)
        parent = tree.get(header.prev_hash)
        if parent is None:
            raise BlockNotFound(f"parent {header.prev_hash} of {header.hash} is unknown")
        mtp = tree.median_time_past(parent, self.params.median_time_span)
        contextual_check_header(header, parent, mtp, now_ms, self.params)
        return tree.add_header(header, header_work(header))

    def process_headers(
        self, headers: Sequence[Header], now_ms: int
    ) -> tuple[int, Exception | None]:
        """Each header in order up to the first that fails: how many were accepted, and why
        it stopped (None when all were)."""
        for position, header in enumerate(headers):
            try:
                self.process_header(header, now_ms)
            except (InvalidBlock, BlockTooNew, BlockNotFound) as exc:
                return position, exc
        return len(headers), None

    def process_block(self, header: Header, now_ms: int) -> Accepted:
        """The body of ``header`` arrived: store it and move the tip to the best candidate."""
        known = self.tree.get(header.hash)
        if known is not None and known.status in (Status.DATA, Status.VALID):
            return Accepted(BlockOutcome.DUPLICATE)
        try:
            entry = self.process_header(header, now_ms)
        except BlockNotFound:
            return Accepted(BlockOutcome.NEED_PARENTS)
        except BlockTooNew:
            return Accepted(BlockOutcome.TOO_NEW)
        except InvalidBlock:
            return Accepted(BlockOutcome.REJECTED)
        self.tree.set_data(entry.hash)
        return self._activate()

    def _activate(self) -> Accepted:
        best = self.tree.best_candidate(self.tip)
        if best is self.tip:
            return Accepted(BlockOutcome.ACCEPTED)
        disconnect, connect = self.tree.reorg_path(self.tip, best)
        for connected in connect:
            self.tree.set_valid(connected.hash)
        self.tip = best
        return Accepted(BlockOutcome.ACCEPTED, connect, len(disconnect))

    def has_body(self, block_hash: str) -> bool:
        entry = self.tree.get(block_hash)
        return entry is not None and entry.status in (Status.DATA, Status.VALID)

    def locator(self) -> list[str]:
        return self.tree.locator(self.tip)

    def headers_after(self, locator: Sequence[str], limit: int) -> list[Entry]:
        return self.tree.headers_after_locator(self.tip, locator, limit)

    def missing_bodies(self, target: Entry) -> list[str]:
        """Bodies missing on the way to ``target``, lowest first (``headersync``'s rule)."""
        _, connect = self.tree.reorg_path(self.tip, target)
        return missing_bodies(target, self.tip, connect)
