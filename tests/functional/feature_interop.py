"""ML supply-chain interop against real nodes (design §11): a model signed with OpenSSF
model-signing is registered, anchored, verified from two nodes and exported as a DSSE
envelope of SLSA provenance, which independent code validates."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from google.protobuf import json_format
from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
from in_toto_attestation.v1 import statement_pb2
from in_toto_attestation.v1.statement import Statement

from tests.functional.conftest import NodeFactory
from tests.functional.feature_cli import ailedger, ok
from tests.functional.framework import TestNode, sync_blocks
from tests.modelsigning import make_hf_model, make_signing_key, sign_model


def independent_pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 PAE, written from the spec, not imported from the exporter."""
    return b" ".join(
        [
            b"DSSEv1",
            str(len(payload_type.encode())).encode(),
            payload_type.encode(),
            str(len(payload)).encode(),
            payload,
        ]
    )


def register_lineage(node: TestNode, key: Path, tmp_path: Path) -> dict[str, str]:
    """raw -> clean (datasets), base (a model file), the records a model derives from."""
    raw = tmp_path / "raw.csv"
    raw.write_text("text,label\nhello,1\n")
    clean = tmp_path / "clean.csv"
    clean.write_text("text,label\nhello,1\n\n")
    base = tmp_path / "base.bin"
    base.write_bytes(b"base model weights" * 100)
    txids = {
        "raw": ok(
            "register",
            "dataset",
            str(raw),
            "--name",
            "raw",
            "--uri",
            "https://data.example/raw.csv",
            "--key",
            str(key),
            "--node",
            node.url,
        )
    }
    txids["clean"] = ok(
        "register",
        "dataset",
        str(clean),
        "--name",
        "clean",
        "--derived-from",
        txids["raw"],
        "--key",
        str(key),
        "--node",
        node.url,
    )
    txids["base"] = ok(
        "register", "model", str(base), "--name", "base", "--key", str(key), "--node", node.url
    )
    return txids


def test_model_signing_bundle_round_trip(make_node: NodeFactory, tmp_path: Path) -> None:
    node = make_node()
    other = make_node(args=["--peer", node.url])
    key = tmp_path / "me.pem"
    public_hex = ok("keygen", "--out", str(key))
    model = make_hf_model(tmp_path / "llama-tiny")
    private, public = make_signing_key(tmp_path)
    bundle = sign_model(model, private, tmp_path / "llama-tiny.sig")
    lineage = register_lineage(node, key, tmp_path)

    signing = ["--model-signing-bundle", str(bundle), "--model-signing-public-key", str(public)]
    registered = ok(
        "register",
        "model",
        str(model),
        "--name",
        "llama-tiny",
        *signing,
        "--input",
        f"{lineage['clean']}:training_data",
        "--input",
        f"{lineage['base']}:base_model",
        "--key",
        str(key),
        "--node",
        node.url,
    ).split()
    assert len(registered) == 2, registered
    model_txid, anchor_txid = registered
    node.mine(2)
    sync_blocks([node, other])

    both = ["--node", node.url, "--node", other.url]
    verified = ailedger("verify", str(model), *signing, *both)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"anchored by {anchor_txid}" in verified.stdout
    assert model_txid in verified.stdout

    as_json = json.loads(ok("verify", str(model), *signing, *both, "--json"))
    assert as_json["ok"] and as_json["model_signing"]["anchored_by"][0]["txid"] == anchor_txid
    anchor = node.tx(anchor_txid)
    assert anchor["payload"]["type"] == "model-signing/v1"
    assert anchor["payload"]["result"] == {
        k: as_json["model_signing"][k]
        for k in ("payload_digest", "subject_digest", "predicate_type", "key_fingerprint")
    }

    envelope = json.loads(
        ok("export", model_txid, "--format", "in-toto", "--key", str(key), "--node", other.url)
    )
    check_envelope(envelope, public_hex)
    statement = json.loads(base64.b64decode(envelope["payload"]))
    assert list(statement["subject"][0]["digest"]) == ["ailedgerManifestV1"]
    dependencies = statement["predicate"]["buildDefinition"]["resolvedDependencies"]
    by_txid = {d["annotations"]["txid"]: d for d in dependencies}
    assert set(by_txid) == {lineage["raw"], lineage["clean"], lineage["base"]}
    assert by_txid[lineage["clean"]]["annotations"]["role"] == "training_data"
    assert by_txid[lineage["base"]]["annotations"]["role"] == "base_model"
    assert "role" not in by_txid[lineage["raw"]]["annotations"]  # not a direct input
    assert by_txid[lineage["raw"]]["uri"] == "https://data.example/raw.csv"
    for txid, dependency in by_txid.items():
        view = node.tx(txid)
        assert dependency["digest"] == {"sha256": view["payload"]["digest"][7:]}
        assert dependency["annotations"]["blockHash"] == view["block_hash"]
        assert dependency["annotations"]["height"] == view["height"]

    out = tmp_path / "provenance.json"
    ok(
        "export",
        model_txid,
        "--format",
        "in-toto",
        "--key",
        str(key),
        "--node",
        node.url,
        "--artifact",
        str(model),
        "--out",
        str(out),
    )
    per_file = json.loads(base64.b64decode(json.loads(out.read_text())["payload"]))
    names = [s["name"] for s in per_file["subject"]]
    assert "config.json" in names and "model-00001-of-00002.safetensors" in names
    assert not any(n.startswith(".git") for n in names)

    tampered = model / "model-00002-of-00002.safetensors"
    original = tampered.read_bytes()
    tampered.write_bytes(original[:-1] + b"!")
    failed = ailedger("verify", str(model), *signing, *both)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "model-00002-of-00002.safetensors: modified" in failed.stderr

    # The signer withdraws the anchor: the bundle no longer verifies as anchored.
    tampered.write_bytes(original)
    ok("record", "revocation", "--subject", anchor_txid, "--key", str(key), "--node", node.url)
    node.mine(1)
    revoked = ailedger("verify", str(model), *signing, "--node", node.url)
    assert revoked.returncode == 1, revoked.stdout + revoked.stderr
    assert "no model-signing/v1 attestation" in revoked.stderr
    assert f"attestation {anchor_txid}: revoked by" in revoked.stderr


def check_envelope(envelope: dict[str, Any], public_hex: str) -> None:
    """The envelope validates with in-toto-attestation and its signature verifies."""
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    payload = base64.b64decode(envelope["payload"])
    [signature] = envelope["signatures"]
    assert signature["keyid"] == public_hex
    Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex)).verify(
        base64.b64decode(signature["sig"]), independent_pae(envelope["payloadType"], payload)
    )
    document = json.loads(payload)
    parsed = json_format.ParseDict(document, statement_pb2.Statement())
    Statement.copy_from_pb(parsed).validate()
    assert parsed.predicate_type == "https://slsa.dev/provenance/v1"
    provenance = json_format.ParseDict(document["predicate"], provenance_pb2.Provenance())
    assert provenance.build_definition.build_type
    assert provenance.build_definition.external_parameters
    assert provenance.run_details.builder.id


def test_bundles_that_do_not_fit_are_refused(make_node: NodeFactory, tmp_path: Path) -> None:
    node = make_node()
    key = tmp_path / "me.pem"
    ok("keygen", "--out", str(key))
    model = make_hf_model(tmp_path / "model")
    private, public = make_signing_key(tmp_path)
    stranger_private, stranger_public = make_signing_key(tmp_path, "stranger")
    register = [
        "register",
        "model",
        str(model),
        "--name",
        "m",
        "--key",
        str(key),
        "--node",
        node.url,
    ]

    def refused(bundle: Path, public_key: Path) -> str:
        done = ailedger(
            *register,
            "--model-signing-bundle",
            str(bundle),
            "--model-signing-public-key",
            str(public_key),
        )
        assert done.returncode != 0, done.stdout
        assert done.stdout == ""  # nothing registered
        return done.stderr

    by_stranger = sign_model(model, stranger_private, tmp_path / "stranger.sig")
    assert "bad-signature" in refused(by_stranger, public)
    other = make_hf_model(tmp_path / "other", seed=b"other")
    assert "not the model the bundle signs" in refused(
        sign_model(other, private, tmp_path / "other.sig"), public
    )
    sharded = sign_model(model, private, tmp_path / "sharded.sig", shard_size=50_000)
    assert "shard" in refused(sharded, public)
    assert node.call("GET", "/v1/mempool")["count"] == 0

    # Anchored with one key; a bundle of the same files by another key is not anchored,
    # not even when someone else attests it.
    signing = ["--model-signing-bundle", str(by_stranger)]
    signing += ["--model-signing-public-key", str(stranger_public)]
    model_txid = ok(
        *register,
        "--model-signing-bundle",
        str(bundle_of(model, private, tmp_path)),
        "--model-signing-public-key",
        str(public),
    ).split()[0]
    node.mine(1)
    alone = ailedger("verify", str(model), *signing, "--node", node.url)
    assert alone.returncode == 1, alone.stdout + alone.stderr
    assert "no model-signing/v1 attestation" in alone.stderr
    stranger_result = json.loads(
        ailedger("verify", str(model), *signing, "--node", node.url, "--json").stdout
    )["model_signing"]
    mallory = tmp_path / "mallory.pem"
    ok("keygen", "--out", str(mallory))
    result = {
        k: stranger_result[k]
        for k in ("payload_digest", "subject_digest", "predicate_type", "key_fingerprint")
    }
    ok(
        "record",
        "attestation",
        "--subject",
        model_txid,
        "--type",
        "model-signing/v1",
        "--result",
        json.dumps(result),
        "--key",
        str(mallory),
        "--node",
        node.url,
    )
    node.mine(1)
    attested = ailedger("verify", str(model), *signing, "--node", node.url)
    assert attested.returncode == 1, attested.stdout + attested.stderr
    assert "signed by another key than the model's" in attested.stderr


def bundle_of(model: Path, private: Path, tmp_path: Path) -> Path:
    return sign_model(model, private, tmp_path / "model.sig")
