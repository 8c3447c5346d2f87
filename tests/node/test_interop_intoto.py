"""``export --format in-toto`` (node.interop.intoto) against fake nodes serving a real
regtest chain: what the statement holds, and that every record in it is proven."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from consensus.keys import private_key_from_seed, public_key_hex
from consensus.params import REGTEST
from consensus.tx import Transaction, sign_tx
from node.client import Client
from node.interop import InteropError
from node.interop.intoto import MANIFEST_DIGEST_KEY, export_in_toto, pae
from node.manifest import digest_directory, digest_file
from tests.node.test_client_verify import FakeNode, chain_of, network

ALICE = private_key_from_seed(b"a" * 32)
EXPORTER = private_key_from_seed(b"e" * 32)
_nonces = iter(range(1, 10**6))


def record(kind: str, payload: dict[str, Any]) -> Transaction:
    return sign_tx(
        ALICE,
        network="regtest",
        kind=kind,
        payload=payload,
        nonce=next(_nonces),
        timestamp=REGTEST.genesis_timestamp_ms + 1234,
    )


def sha(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def export(fake: FakeNode, txid: str, artifact: Path | None = None) -> dict[str, Any]:
    with Client("http://a", transport=network(a=fake)) as client:
        return export_in_toto(client, txid, EXPORTER, artifact)


def statement_of(envelope: dict[str, Any]) -> dict[str, Any]:
    return dict(json.loads(base64.b64decode(envelope["payload"])))


def test_pae_is_the_dsse_v1_encoding() -> None:
    # The worked example of the DSSE v1 protocol document.
    expected = b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    assert pae("http://example.com/HelloWorld", b"hello world") == expected


@pytest.fixture
def lineage(tmp_path: Path) -> dict[str, Any]:
    weights = tmp_path / "model.bin"
    weights.write_bytes(b"weights" * 50)
    corpus = record("dataset", {"name": "corpus", "digest": sha("corpus"), "uri": "s3://c"})
    model = record(
        "model",
        {
            "name": "net",
            "digest": digest_file(weights),
            "inputs": [{"ref": corpus.txid, "role": "training_data"}],
            "hyperparameters": {"lr": 0.001},
        },
    )
    guess = record(
        "inference",
        {"model": model.txid, "input_digest": sha("in"), "output_digest": sha("out")},
    )
    audit = record(
        "attestation", {"subject": model.txid, "type": "evaluation", "result": {"f1": 1}}
    )
    blocks = chain_of([corpus], [model, guess, audit], [])
    return {
        "weights": weights,
        "blocks": blocks,
        "corpus": corpus,
        "model": model,
        "inference": guess,
        "audit": audit,
    }


def test_a_file_model_is_the_sha256_subject_and_its_inputs_are_dependencies(
    lineage: dict[str, Any],
) -> None:
    fake = FakeNode(lineage["blocks"])
    model, corpus = lineage["model"], lineage["corpus"]
    envelope = export(fake, model.txid, lineage["weights"])
    [signature] = envelope["signatures"]
    assert signature["keyid"] == public_key_hex(EXPORTER)
    Ed25519PublicKey.from_public_bytes(bytes.fromhex(signature["keyid"])).verify(
        base64.b64decode(signature["sig"]),
        pae(envelope["payloadType"], base64.b64decode(envelope["payload"])),
    )
    statement = statement_of(envelope)
    assert statement["subject"] == [
        {"name": "net", "digest": {"sha256": model.payload["digest"][7:]}}
    ]
    build = statement["predicate"]["buildDefinition"]
    assert build["externalParameters"]["record"]["hyperparameters"] == {"lr": 0.001}
    [dependency] = build["resolvedDependencies"]
    block = lineage["blocks"][1]
    assert dependency == {
        "name": "corpus",
        "uri": "s3://c",
        "digest": {"sha256": corpus.payload["digest"][7:]},
        "annotations": {
            "txid": corpus.txid,
            "blockHash": block.hash,
            "height": 1,
            "kind": "dataset",
            "role": "training_data",
        },
    }
    run = statement["predicate"]["runDetails"]
    assert run["builder"]["id"] == "urn:ailedger:signer:" + model.signer
    assert run["metadata"]["invocationId"] == model.txid
    assert run["metadata"]["finishedOn"].endswith(".234Z")


def test_the_payload_is_rfc8785_canonical(lineage: dict[str, Any]) -> None:
    envelope = export(FakeNode(lineage["blocks"]), lineage["model"].txid)
    payload = base64.b64decode(envelope["payload"])
    assert payload == json.dumps(
        json.loads(payload), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")


def test_an_inference_exports_its_output_and_the_models_lineage(lineage: dict[str, Any]) -> None:
    guess = lineage["inference"]
    statement = statement_of(export(FakeNode(lineage["blocks"]), guess.txid))
    assert statement["subject"] == [{"name": "output", "digest": {"sha256": sha("out")[7:]}}]
    roles = {
        d["annotations"]["txid"]: d["annotations"].get("role")
        for d in statement["predicate"]["buildDefinition"]["resolvedDependencies"]
    }
    assert roles == {lineage["model"].txid: "model", lineage["corpus"].txid: None}


def test_a_directory_without_artifact_has_the_manifest_digest_key(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.txt").write_text("a")
    (tmp_path / "data" / "b.txt").write_text("b")
    digest, manifest = digest_directory(tmp_path / "data")
    metadata = {"artifact": {"type": "directory", "files": 2}}
    corpus = record("dataset", {"name": "data", "digest": digest, "metadata": metadata})
    blocks = chain_of([corpus])
    bare = statement_of(export(FakeNode(blocks), corpus.txid))
    assert bare["subject"] == [{"name": "data", "digest": {MANIFEST_DIGEST_KEY: digest[7:]}}]
    per_file = statement_of(export(FakeNode(blocks), corpus.txid, tmp_path / "data"))
    assert per_file["subject"] == [
        {"name": name, "digest": {"sha256": value[7:]}} for name, value in manifest["files"].items()
    ]


def test_another_artifact_is_refused(lineage: dict[str, Any], tmp_path: Path) -> None:
    other = tmp_path / "other.bin"
    other.write_bytes(b"not the model")
    with pytest.raises(InteropError) as caught:
        export(FakeNode(lineage["blocks"]), lineage["model"].txid, other)
    assert caught.value.code == "artifact-mismatch"


def test_an_attestation_is_not_exported(lineage: dict[str, Any]) -> None:
    with pytest.raises(InteropError, match="export a dataset, model or inference"):
        export(FakeNode(lineage["blocks"]), lineage["audit"].txid)


def test_a_lying_nodes_ancestor_is_caught(lineage: dict[str, Any]) -> None:
    corpus = lineage["corpus"]

    def lie(proof: dict[str, Any]) -> dict[str, Any]:
        if proof["txid"] == corpus.txid:
            forged = record("dataset", {"name": "corpus", "digest": sha("forged")})
            return {**proof, "leaf": forged.leaf_bytes.hex()}
        return proof

    with pytest.raises(InteropError) as caught:
        export(FakeNode(lineage["blocks"], patch_proof=lie), lineage["model"].txid)
    assert caught.value.code == "not-exportable"
    assert corpus.txid in caught.value.message
