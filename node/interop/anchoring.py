"""Is this model-signing bundle anchored on the chain by the model's own signer?

``verify_anchored`` runs the light verifier (``node.verifier``) on the directory's digest,
then, for each model record of it that verifies, looks at the records that reference it
and accepts a ``model-signing/v1`` attestation only when its inclusion proof checks
against the same most-work chain with enough confirmations, it is not revoked, it is
signed by the model's signer, and its ``result`` names this bundle's payload digest and
key fingerprint. Every field compared is read from the proven leaf, never from a node's
view, so no single node can make a bundle look anchored.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from node.interop.model_signing import ATTESTATION_TYPE, CheckedBundle
from node.records import now_ms
from node.verifier import RecordReport, Verification, VerifyReport, open_verification

__all__ = ["AnchorReport", "verify_anchored"]


@dataclass(slots=True)
class AnchorReport:
    """The verifier's report on the digest, and the attestations that anchor the bundle."""

    report: VerifyReport
    anchors: list[RecordReport] = field(default_factory=list)
    """Proven ``model-signing/v1`` attestations of this bundle by a model's signer."""
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """Why each other ``model-signing/v1`` attestation on the model is no anchor."""

    @property
    def ok(self) -> bool:
        return self.report.ok and bool(self.anchors)

    def failures(self) -> list[str]:
        return self.report.failures() + self.reasons

    def to_json(self, checked: CheckedBundle) -> dict[str, Any]:
        return {
            **self.report.to_json(),
            "ok": self.ok,
            "model_signing": {
                **checked.result(),
                "anchored_by": [
                    {"txid": a.txid, "height": a.height, "confirmations": a.confirmations}
                    for a in self.anchors
                ],
                "reasons": self.reasons,
                "notes": self.notes,
            },
        }


def verify_anchored(
    checked: CheckedBundle,
    nodes: Sequence[str],
    confirmations: int = 1,
    *,
    timeout: float = 10.0,
    transport: httpx.BaseTransport | None = None,
    clock_ms: Callable[[], int] = now_ms,
) -> AnchorReport:
    """Verify the directory's records and the attestation anchoring ``checked``."""
    digest = checked.artifact.digest
    with open_verification(
        digest, nodes, confirmations, timeout=timeout, transport=transport, clock_ms=clock_ms
    ) as verification:
        answer = AnchorReport(verification.report)
        models = [r for r in answer.report.records if r.ok and r.kind == "model"]
        for model in models:
            answer.anchors += _anchors(verification, model, checked, answer.notes)
    if not models:
        answer.reasons.append(f"no verified model record of {digest}")
    elif not answer.anchors:
        answer.reasons.append(
            f"no {ATTESTATION_TYPE} attestation of payload {checked.bundle.payload_digest} "
            "by the model's signer is proven on the chain"
        )
    return answer


def _anchors(
    verification: Verification, model: RecordReport, checked: CheckedBundle, notes: list[str]
) -> list[RecordReport]:
    """The attestations on ``model`` that anchor ``checked``; why others do not, in ``notes``."""
    found = []
    for txid, (view, revokers) in verification.related(model.txid).items():
        claimed = _object(view.get("payload"))
        if view.get("kind") != "attestation" or claimed.get("type") != ATTESTATION_TYPE:
            continue  # a hint only: what counts is re-read from the proven leaf below
        record = verification.verify_record(txid, view, revokers, mentions_digest=False)
        problem = _mismatch(record, model, checked.result())
        if problem is None:
            found.append(record)
        else:
            notes.append(f"attestation {txid}: {problem}")
    return found


def _mismatch(record: RecordReport, model: RecordReport, expected: dict[str, str]) -> str | None:
    """Why a proven record is no anchor of this bundle for ``model``, or None."""
    payload = record.payload or {}
    result = _object(payload.get("result"))
    if not record.ok:
        return "; ".join(record.reasons) or "not proven"
    if record.kind != "attestation" or payload.get("type") != ATTESTATION_TYPE:
        return f"a {record.kind}, not a {ATTESTATION_TYPE} attestation"
    if payload.get("subject") != model.txid:
        return f"attests another record than {model.txid}"
    if record.signer != model.signer:
        return "signed by another key than the model's"
    if result.get("payload_digest") != expected["payload_digest"]:
        return "anchors another bundle payload"
    if result.get("key_fingerprint") != expected["key_fingerprint"]:
        return "names another signing key"
    return None


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
