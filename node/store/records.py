"""What each record contributes to the indexes: its digests and its lineage edges.

Digest fields (design §2), stored with the field name so a client can tell a model's own
``digest`` from its ``code_digest``:

    dataset    digest
    model      digest, code_digest
    inference  input_digest, output_digest

Lineage edges, child -> parent, with a role:

    dataset.derived_from[]   "derived_from"
    model.inputs[]           the input's own role (training_data, base_model, ...)
    inference.model          "model"
    attestation.subject      "subject"
    revocation.subject       "revokes"

These are plain functions of a transaction's payload; they trust it to be well formed
(the consensus rules checked it before the store ever sees it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from consensus.tx import Transaction

__all__ = ["DIGEST_FIELDS", "RecordRow", "digests", "edges", "revoked_subject"]

DIGEST_FIELDS: dict[str, tuple[str, ...]] = {
    "dataset": ("digest",),
    "model": ("digest", "code_digest"),
    "inference": ("input_digest", "output_digest"),
}

_SINGLE_REFS: dict[str, tuple[str, str]] = {
    "inference": ("model", "model"),
    "attestation": ("subject", "subject"),
    "revocation": ("subject", "revokes"),
}


@dataclass(frozen=True, slots=True)
class RecordRow:
    """A confirmed record on the active chain and where it sits."""

    tx: Transaction
    block_hash: str
    height: int
    index: int
    revoked_by: str | None

    @property
    def txid(self) -> str:
        return self.tx.txid


def digests(tx: Transaction) -> list[tuple[str, str]]:
    """``(digest, field)`` for every digest field the record carries."""
    payload: dict[str, Any] = tx.payload
    return [
        (payload[name], name)
        for name in DIGEST_FIELDS.get(tx.kind, ())
        if isinstance(payload.get(name), str)
    ]


def edges(tx: Transaction) -> list[tuple[str, str]]:
    """``(parent_txid, role)`` for every reference the record makes, duplicates dropped."""
    payload: dict[str, Any] = tx.payload
    found: list[tuple[str, str]] = []
    if tx.kind == "dataset":
        found = [(ref, "derived_from") for ref in payload.get("derived_from", ())]
    elif tx.kind == "model":
        found = [(item["ref"], item["role"]) for item in payload.get("inputs", ())]
    elif tx.kind in _SINGLE_REFS:
        name, role = _SINGLE_REFS[tx.kind]
        found = [(payload[name], role)]
    return list(dict.fromkeys(found))


def revoked_subject(tx: Transaction) -> str | None:
    """The txid a revocation revokes; ``None`` for every other kind."""
    if tx.kind != "revocation":
        return None
    subject: str = tx.payload["subject"]
    return subject
