"""A record and its lineage as SLSA provenance in a DSSE-signed in-toto Statement (§11).

``export_in_toto`` proves the record and every ancestor (datasets and models it derives
from, followed through the proven payloads' references) against the node's header chain,
checked here (``node.proofs``), and writes::

    DSSE envelope {payloadType: application/vnd.in-toto+json, payload: base64,
                   signatures: [{keyid: <Ed25519 public key hex>, sig: base64}]}
    payload = RFC 8785 canonical JSON of an in-toto Statement v1:
      subject          the record's artifact: {"sha256": hex} of a file; for a directory
                       with --artifact one subject per file; without it the manifest
                       digest under the custom key "ailedgerManifestV1" (a manifest digest
                       is not the sha256 of any file's bytes)
      predicateType    https://slsa.dev/provenance/v1
      predicate        buildDefinition {buildType, externalParameters (the record's own
                       fields), resolvedDependencies (every ancestor: digest.sha256, uri
                       when it has one, annotations txid, blockHash, height, kind and, for
                       direct inputs, role)}, runDetails {builder.id "urn:ailedger:signer:
                       <hex>", metadata.invocationId = txid, byproducts: the record
                       itself, whose txid is the sha256 of its body}

The signature is Ed25519 over the DSSE v1 pre-authentication encoding (``pae``).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from consensus.encoding import canonical_json
from consensus.keys import public_key_hex
from consensus.params import params_for
from node.client import Client
from node.interop.errors import InteropError
from node.manifest import digest_artifact
from node.proofs import HeaderChain, ProvenTx, VerificationError, check_header_chain, check_proof
from node.records import now_ms

__all__ = [
    "BUILD_TYPE",
    "MANIFEST_DIGEST_KEY",
    "PAYLOAD_TYPE",
    "SLSA_PROVENANCE_V1",
    "dsse_envelope",
    "export_in_toto",
    "pae",
    "provenance_statement",
]

PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "urn:ailedger:provenance:record:v1"
MANIFEST_DIGEST_KEY = "ailedgerManifestV1"
_EXPORTABLE = ("dataset", "model", "inference")
_MAX_RECORDS = 5_000


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what the signature covers."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)


def dsse_envelope(payload: bytes, key: Ed25519PrivateKey) -> dict[str, Any]:
    """A DSSE envelope of an in-toto payload, signed with ``key`` (keyid: its hex)."""
    signature = key.sign(pae(PAYLOAD_TYPE, payload))
    return {
        "payloadType": PAYLOAD_TYPE,
        "payload": base64.b64encode(payload).decode("ascii"),
        "signatures": [
            {"keyid": public_key_hex(key), "sig": base64.b64encode(signature).decode("ascii")}
        ],
    }


def export_in_toto(
    client: Client,
    txid: str,
    key: Ed25519PrivateKey,
    artifact: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """The signed envelope of ``txid``'s provenance, every record proven (module doc)."""
    chain = _checked_chain(client)
    root = _prove(client, txid, chain)
    if root.tx.kind not in _EXPORTABLE:
        raise InteropError(
            "not-exportable", f"{txid} is a {root.tx.kind}; export a dataset, model or inference"
        )
    ancestors = _ancestors(client, root, chain)
    subjects = _subjects(root, artifact)
    statement = provenance_statement(root, ancestors, subjects)
    return dsse_envelope(canonical_json(statement), key)


def _checked_chain(client: Client) -> HeaderChain:
    try:
        return check_header_chain(client.all_headers(), params_for(client.network()), now_ms())
    except (VerificationError, KeyError) as exc:
        raise InteropError("not-exportable", f"{client.base_url}: its chain: {exc}") from exc


def _prove(client: Client, txid: str, chain: HeaderChain) -> ProvenTx:
    try:
        return check_proof(client.proof(txid), txid, chain)
    except VerificationError as exc:
        raise InteropError("not-exportable", f"{txid}: its proof: {exc}") from exc


def _references(payload: Mapping[str, Any], kind: str) -> list[tuple[str, str]]:
    """``(txid, role)`` of every record this one derives from."""
    if kind == "dataset":
        return [(ref, "derived_from") for ref in payload.get("derived_from", ())]
    if kind == "model":
        return [(item["ref"], item["role"]) for item in payload.get("inputs", ())]
    if kind == "inference":
        return [(payload["model"], "model")]
    return []


def _ancestors(
    client: Client, root: ProvenTx, chain: HeaderChain
) -> list[tuple[ProvenTx, str | None]]:
    """Every ancestor, breadth first, proven; with its role when a direct input."""
    direct: dict[str, str] = {}
    for ref, role in _references(root.tx.payload, root.tx.kind):
        direct.setdefault(ref, role)  # an input named twice keeps its first role
    found: dict[str, ProvenTx] = {}
    frontier = list(direct)
    while frontier:
        txid = frontier.pop(0)
        if txid in found or txid == root.tx.txid:
            continue
        if len(found) >= _MAX_RECORDS:
            raise InteropError("not-exportable", f"more than {_MAX_RECORDS} ancestors")
        proven = found[txid] = _prove(client, txid, chain)
        frontier += [ref for ref, _ in _references(proven.tx.payload, proven.tx.kind)]
    return [(proven, direct.get(txid)) for txid, proven in found.items()]


def provenance_statement(
    root: ProvenTx,
    ancestors: list[tuple[ProvenTx, str | None]],
    subjects: list[dict[str, Any]],
) -> dict[str, Any]:
    """The in-toto Statement v1 with a SLSA provenance v1 predicate (module docstring)."""
    tx = root.tx
    return {
        "_type": STATEMENT_TYPE,
        "subject": subjects,
        "predicateType": SLSA_PROVENANCE_V1,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "network": tx.network,
                    "kind": tx.kind,
                    "record": dict(tx.payload),
                },
                "resolvedDependencies": [_dependency(proven, role) for proven, role in ancestors],
            },
            "runDetails": {
                "builder": {"id": f"urn:ailedger:signer:{tx.signer}"},
                "metadata": {
                    "invocationId": tx.txid,
                    "finishedOn": _rfc3339(tx.timestamp),
                },
                "byproducts": [
                    {
                        "name": f"ailedger {tx.kind} record",
                        "digest": {"sha256": tx.txid},
                        "annotations": _where(root),
                    }
                ],
            },
        },
    }


def _dependency(proven: ProvenTx, role: str | None) -> dict[str, Any]:
    payload = proven.tx.payload
    annotations = {**_where(proven), "kind": proven.tx.kind}
    if role is not None:
        annotations["role"] = role
    if _is_directory(payload):
        annotations["digestOf"] = MANIFEST_DIGEST_KEY  # the sha256 of the manifest's JCS
    dependency: dict[str, Any] = {
        "name": payload["name"],
        "digest": {"sha256": payload["digest"].removeprefix("sha256:")},
        "annotations": annotations,
    }
    if isinstance(payload.get("uri"), str):
        dependency["uri"] = payload["uri"]
    return dependency


def _where(proven: ProvenTx) -> dict[str, Any]:
    return {"txid": proven.tx.txid, "blockHash": proven.header.hash, "height": proven.height}


def _is_directory(payload: Mapping[str, Any]) -> bool:
    metadata = payload.get("metadata")
    layout = metadata.get("artifact") if isinstance(metadata, dict) else None
    return isinstance(layout, dict) and layout.get("type") == "directory"


def _rfc3339(timestamp_ms: int) -> str:
    moment = datetime.fromtimestamp(timestamp_ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{timestamp_ms % 1000:03d}Z"


def _subjects(root: ProvenTx, artifact: str | os.PathLike[str] | None) -> list[dict[str, Any]]:
    payload = root.tx.payload
    if root.tx.kind == "inference":
        name, digest = "output", payload["output_digest"]
    else:
        name, digest = payload["name"], payload["digest"]
    if artifact is None:
        key = MANIFEST_DIGEST_KEY if _is_directory(payload) else "sha256"
        return [{"name": name, "digest": {key: digest.removeprefix("sha256:")}}]
    hashed = digest_artifact(artifact, exclude=_excluded(payload))
    if hashed.digest != digest:
        raise InteropError("artifact-mismatch", f"{artifact} is not the record's {digest}")
    if hashed.manifest is None:
        return [{"name": name, "digest": {"sha256": digest.removeprefix("sha256:")}}]
    files: dict[str, str] = hashed.manifest["files"]
    return [{"name": n, "digest": {"sha256": d.removeprefix("sha256:")}} for n, d in files.items()]


def _excluded(payload: Mapping[str, Any]) -> list[str]:
    """The top-level names a directory's digest leaves out, as its record says (a model
    registered with a model-signing bundle leaves out ``MODEL_SIGNING_IGNORED``)."""
    metadata = payload.get("metadata")
    layout = metadata.get("artifact") if isinstance(metadata, dict) else None
    names = layout.get("excludes") if isinstance(layout, dict) else None
    return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []
