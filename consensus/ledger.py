"""Record-level rules (design section 2): how a transaction relates to the chain so far.

A transaction is checked against a ``LedgerView`` (the records of the chain up to this
point, plus the earlier transactions of the same block). The rules, with reject codes:

- ``duplicate``: its txid is not already recorded;
- ``duplicate-nonce``: its (signer, nonce) pair is not already used;
- ``unknown-reference``: every reference names a recorded transaction (so a transaction
  can only reference earlier ones, never itself or a later one in the same block);
- ``bad-reference-kind``: dataset ``derived_from`` -> datasets; model ``inputs[].ref`` ->
  datasets or models; inference ``model`` -> a model; attestation ``subject`` -> any
  record; revocation ``subject`` -> any record but a revocation (a revocation cannot be
  revoked);
- ``not-subject-signer``: a revocation is signed by the signer of its subject;
- ``already-revoked``: a record is revoked at most once.

``Overlay`` stacks the transactions of a block (or of the mempool) on a base view, so
each sees the ones applied before it, without touching the base. ``MemoryLedger`` is a
plain in-memory view for tests and reference models.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from consensus.errors import InvalidTx
from consensus.tx import Transaction

__all__ = [
    "ALLOWED_REFERENCE_KINDS",
    "LedgerView",
    "MemoryLedger",
    "Overlay",
    "RecordInfo",
    "check_tx_ledger",
]

# kind of the referencing transaction -> kinds its references may point at
ALLOWED_REFERENCE_KINDS: dict[str, frozenset[str]] = {
    "dataset": frozenset({"dataset"}),
    "model": frozenset({"dataset", "model"}),
    "inference": frozenset({"model"}),
    "attestation": frozenset({"dataset", "model", "inference", "attestation", "revocation"}),
    "revocation": frozenset({"dataset", "model", "inference", "attestation"}),
}


@dataclass(frozen=True, slots=True)
class RecordInfo:
    """What the ledger rules need to know about a recorded transaction."""

    kind: str
    signer: str


class LedgerView(Protocol):
    """The records of a chain up to some point, as the ledger rules see them."""

    def record(self, txid: str) -> RecordInfo | None:
        """The record with this txid, or None if there is none so far."""
        ...

    def nonce_used(self, signer: str, nonce: int) -> bool:
        """True if a recorded transaction has this (signer, nonce)."""
        ...

    def is_revoked(self, txid: str) -> bool:
        """True if a recorded revocation names this txid as its subject."""
        ...


def _a(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def _reference_error(tx: Transaction, ref: str, role: str, found: str) -> InvalidTx:
    if tx.kind == "revocation" and found == "revocation":
        return InvalidTx("bad-reference-kind", "a revocation cannot be revoked", txid=tx.txid)
    wanted = " or ".join(_a(kind) for kind in sorted(ALLOWED_REFERENCE_KINDS[tx.kind]))
    return InvalidTx(
        "bad-reference-kind",
        f"{role} reference {ref} is {_a(found)} record; {_a(tx.kind)} needs {wanted} here",
        txid=tx.txid,
    )


def _check_revocation(view: LedgerView, tx: Transaction, subject: RecordInfo) -> None:
    """A revocation is by the subject's signer, and of a subject not yet revoked."""
    target = tx.payload["subject"]
    if subject.signer != tx.signer:
        raise InvalidTx(
            "not-subject-signer",
            f"only the signer of {target} ({subject.signer}) may revoke it",
            txid=tx.txid,
        )
    if view.is_revoked(target):
        raise InvalidTx("already-revoked", f"{target} is already revoked", txid=tx.txid)


def check_tx_ledger(view: LedgerView, tx: Transaction) -> None:
    """Raise ``InvalidTx`` (with ``txid``) if ``tx`` breaks a ledger rule against ``view``."""
    if view.record(tx.txid) is not None:
        raise InvalidTx("duplicate", "transaction already recorded", txid=tx.txid)
    if view.nonce_used(tx.signer, tx.nonce):
        raise InvalidTx(
            "duplicate-nonce", f"nonce {tx.nonce} already used by this signer", txid=tx.txid
        )
    allowed = ALLOWED_REFERENCE_KINDS[tx.kind]
    for ref, role in tx.refs():
        found = view.record(ref)
        if found is None:
            raise InvalidTx("unknown-reference", f"{role} reference {ref} not found", txid=tx.txid)
        if found.kind not in allowed:
            raise _reference_error(tx, ref, role, found.kind)
        if tx.kind == "revocation":
            _check_revocation(view, tx, found)


class MemoryLedger:
    """A ``LedgerView`` held in dicts. ``add`` records without checking; ``apply`` checks."""

    def __init__(self, txs: Iterable[Transaction] = ()) -> None:
        self.records: dict[str, RecordInfo] = {}
        self.nonces: set[tuple[str, int]] = set()
        self.revoked: dict[str, str] = {}
        """subject txid -> txid of the revocation"""
        for tx in txs:
            self.add(tx)

    def record(self, txid: str) -> RecordInfo | None:
        return self.records.get(txid)

    def nonce_used(self, signer: str, nonce: int) -> bool:
        return (signer, nonce) in self.nonces

    def is_revoked(self, txid: str) -> bool:
        return txid in self.revoked

    def add(self, tx: Transaction) -> None:
        """Record ``tx`` as it is (the caller has checked it)."""
        self.records[tx.txid] = RecordInfo(tx.kind, tx.signer)
        self.nonces.add((tx.signer, tx.nonce))
        if tx.kind == "revocation":
            self.revoked[tx.payload["subject"]] = tx.txid

    def apply(self, tx: Transaction) -> None:
        """Check ``tx`` against this ledger, then record it."""
        check_tx_ledger(self, tx)
        self.add(tx)

    def remove(self, tx: Transaction) -> None:
        """Undo ``add(tx)`` (disconnecting a block); a no-op for parts not recorded."""
        self.records.pop(tx.txid, None)
        self.nonces.discard((tx.signer, tx.nonce))
        if tx.kind == "revocation" and self.revoked.get(tx.payload["subject"]) == tx.txid:
            del self.revoked[tx.payload["subject"]]


class Overlay(MemoryLedger):
    """Transactions applied on top of a base view, which is never modified.

    Lookups see this overlay's records first, then the base. ``added`` lists the applied
    transactions in order; ``records``, ``nonces`` and ``revoked`` hold what they added,
    for the caller to persist.
    """

    def __init__(self, base: LedgerView) -> None:
        self.base = base
        self.added: list[Transaction] = []
        super().__init__()

    def record(self, txid: str) -> RecordInfo | None:
        found = self.records.get(txid)
        return found if found is not None else self.base.record(txid)

    def nonce_used(self, signer: str, nonce: int) -> bool:
        return (signer, nonce) in self.nonces or self.base.nonce_used(signer, nonce)

    def is_revoked(self, txid: str) -> bool:
        return txid in self.revoked or self.base.is_revoked(txid)

    def add(self, tx: Transaction) -> None:
        super().add(tx)
        self.added.append(tx)

    def remove(self, tx: Transaction) -> None:
        """Undo ``add(tx)`` here, never in the base; its dependents are the caller's business."""
        super().remove(tx)
        if tx in self.added:
            self.added.remove(tx)
