"""The mempool: transactions fully validated against the active chain and earlier pending ones.

A pending transaction may reference records that are themselves pending, so the pool is
also a ``LedgerView`` layered over the chain: checks see chain + pool. Arrival order is
kept, and since a transaction is only accepted after everything it references, arrival
order is a valid block order. The pool is bounded by count and bytes (``mempool-full``)
and persisted by the caller (the store's mempool table).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from consensus.errors import InvalidTx
from consensus.ledger import LedgerView, MemoryLedger, RecordInfo, check_tx_ledger
from consensus.params import ConsensusParams
from consensus.tx import Transaction, check_tx
from node.errors import MempoolFull

__all__ = ["Mempool", "Revalidation"]


@dataclass
class Revalidation:
    kept: list[Transaction]
    evicted: list[Transaction]
    added: list[Transaction]
    """Transactions that were not in the pool before (e.g. from disconnected blocks)."""


class Mempool:
    def __init__(
        self, chain: LedgerView, params: ConsensusParams, *, max_count: int, max_bytes: int
    ) -> None:
        self.chain = chain
        self.params = params
        self.max_count = max_count
        self.max_bytes = max_bytes
        self._reset()

    def _reset(self) -> None:
        self._txs: dict[str, Transaction] = {}
        self._bytes = 0
        self._pending = MemoryLedger()

    # --- LedgerView: the chain plus the pool ----------------------------------------------

    def record(self, txid: str) -> RecordInfo | None:
        return self._pending.record(txid) or self.chain.record(txid)

    def nonce_used(self, signer: str, nonce: int) -> bool:
        return self._pending.nonce_used(signer, nonce) or self.chain.nonce_used(signer, nonce)

    def is_revoked(self, txid: str) -> bool:
        return self._pending.is_revoked(txid) or self.chain.is_revoked(txid)

    # --- contents --------------------------------------------------------------------------

    def __contains__(self, txid: object) -> bool:
        return txid in self._txs

    def __len__(self) -> int:
        return len(self._txs)

    def __iter__(self) -> Iterator[Transaction]:
        return iter(self._txs.values())

    def get(self, txid: str) -> Transaction | None:
        return self._txs.get(txid)

    @property
    def bytes(self) -> int:
        return self._bytes

    def txids(self) -> list[str]:
        return list(self._txs)

    # --- changes ---------------------------------------------------------------------------

    def check(self, tx: Transaction, *, verify: bool = True) -> None:
        """Every rule a pending transaction must pass; raises InvalidTx or MempoolFull."""
        if tx.txid in self._txs:
            raise InvalidTx("duplicate", "transaction is already pending", txid=tx.txid)
        if verify:
            check_tx(tx, self.params)
        check_tx_ledger(self, tx)
        if len(self._txs) >= self.max_count or self._bytes + tx.size > self.max_bytes:
            raise MempoolFull(
                f"mempool holds {len(self._txs)} transactions / {self._bytes} bytes "
                f"(limits {self.max_count} / {self.max_bytes}); try again after the next block"
            )

    def add(self, tx: Transaction) -> None:
        """Add a transaction that passed ``check``."""
        self._txs[tx.txid] = tx
        self._bytes += tx.size
        self._pending.add(tx)

    def remove_confirmed(self, txs: Iterable[Transaction]) -> Revalidation | None:
        """Drop transactions a connected block confirmed.

        When the block held only transactions from this pool, the rest stays consistent and
        nothing else changes (None). Otherwise something may now conflict: revalidate.
        """
        txs = list(txs)
        if all(tx.txid in self._txs for tx in txs):
            for tx in txs:
                self._discard(tx)
            return None
        return self.revalidate([], drop=[tx.txid for tx in txs])

    def _discard(self, tx: Transaction) -> None:
        del self._txs[tx.txid]
        self._bytes -= tx.size
        self._pending.remove(tx)

    def revalidate(self, first: Iterable[Transaction], *, drop: Iterable[str] = ()) -> Revalidation:
        """Rebuild the pool against the current chain: ``first`` (e.g. transactions of
        disconnected blocks, in chain order) then the old pool in arrival order, minus
        ``drop``. What fails now is evicted; dependents of an evicted one fail with it."""
        dropped = set(drop)
        old = [tx for tx in self._txs.values() if tx.txid not in dropped]
        before = set(self._txs)
        self._reset()
        result = Revalidation([], [], [])
        for tx in [*first, *old]:
            try:
                self.check(tx, verify=False)
            except (InvalidTx, MempoolFull):
                if tx.txid in before:
                    result.evicted.append(tx)
                continue
            self.add(tx)
            result.kept.append(tx)
            if tx.txid not in before:
                result.added.append(tx)
        return result

    def select(self, max_count: int, max_bytes: int) -> list[Transaction]:
        """Transactions for a block template, in arrival order, within the block limits.
        A transaction that does not fit is skipped together with everything that depends
        on it, so the template never references a record it does not contain."""
        chosen: list[Transaction] = []
        skipped: set[str] = set()
        size = 0
        for tx in self._txs.values():
            if len(chosen) >= max_count:
                break
            if size + tx.size > max_bytes or any(ref in skipped for ref, _ in tx.refs()):
                skipped.add(tx.txid)
                continue
            chosen.append(tx)
            size += tx.size
        return chosen
