"""OpenSSF model-signing bundles: what is refused before verification, and how a bundle
ties to the ledger's directory digest (node.interop.model_signing)."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import unicodedata
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from node.interop import InteropError
from node.interop.model_signing import (
    MODEL_SIGNING_IGNORED,
    PAYLOAD_TYPE,
    check_bundle,
    differences,
    key_fingerprint,
    read_bundle,
)
from node.manifest import artifact_size, digest_directory
from tests.modelsigning import NFD_NAME, make_hf_model, make_signing_key, sign_model


@pytest.fixture
def signed(tmp_path: Path) -> tuple[Path, Path, Path, Path]:
    """(model directory, bundle, private key, public key)."""
    model = make_hf_model(tmp_path / "model")
    private, public = make_signing_key(tmp_path)
    return model, sign_model(model, private, tmp_path / "model.sig"), private, public


def test_bundle_rebuilds_the_ledger_digest_of_the_directory(signed: tuple[Path, ...]) -> None:
    model, bundle, _, public = signed
    checked = check_bundle(model, bundle, public)
    digest, manifest = digest_directory(model, exclude=MODEL_SIGNING_IGNORED)
    assert checked.artifact.digest == checked.bundle.ledger_digest == digest
    assert unicodedata.normalize("NFC", NFD_NAME) in manifest["files"]
    assert not any(name.startswith(".git") for name in manifest["files"])
    # The .git is what keeps the whole-tree digest apart from the bundle's.
    assert digest_directory(model)[0] != digest


def test_result_hashes_the_payload_as_stored_and_the_key_as_der(
    signed: tuple[Path, ...],
) -> None:
    model, bundle, _, public = signed
    result = check_bundle(model, bundle, public).result()
    envelope = json.loads(bundle.read_text())["dsseEnvelope"]
    payload = base64.b64decode(envelope["payload"])
    statement = json.loads(payload)
    key = serialization.load_pem_public_key(public.read_bytes())
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert result == {
        "payload_digest": "sha256:" + hashlib.sha256(payload).hexdigest(),
        "subject_digest": "sha256:" + statement["subject"][0]["digest"]["sha256"],
        "predicate_type": statement["predicateType"],
        "key_fingerprint": "sha256:" + hashlib.sha256(der).hexdigest(),
    }
    assert key_fingerprint(public) == result["key_fingerprint"]


def test_a_changed_file_is_named(signed: tuple[Path, ...]) -> None:
    model, bundle, _, public = signed
    (model / "model-00002-of-00002.safetensors").write_bytes(b"tampered")
    (model / "extra.bin").write_bytes(b"new")
    (model / "tokenizer.json").unlink()
    with pytest.raises(InteropError) as caught:
        check_bundle(model, bundle, public)
    assert caught.value.code == "bundle-mismatch"
    assert "model-00002-of-00002.safetensors: modified" in caught.value.message
    assert "extra.bin: not in the bundle" in caught.value.message
    assert "tokenizer.json: signed, not in the directory" in caught.value.message
    assert caught.value.exit_code == 1


def test_git_files_may_change_freely(signed: tuple[Path, ...]) -> None:
    model, bundle, _, public = signed
    (model / ".git" / "HEAD").write_text("ref: refs/heads/other\n")
    (model / ".gitignore").write_text("*.tmp\n")
    assert check_bundle(model, bundle, public).artifact.file_count == 8


def test_a_bundle_signed_by_another_key_is_refused(
    signed: tuple[Path, ...], tmp_path: Path
) -> None:
    model, bundle, _, _ = signed
    _, stranger = make_signing_key(tmp_path, "stranger")
    with pytest.raises(InteropError) as caught:
        check_bundle(model, bundle, stranger)
    assert caught.value.code == "bad-signature"


def test_a_bundle_of_another_directory_is_refused(signed: tuple[Path, ...], tmp_path: Path) -> None:
    model, _, private, public = signed
    other = make_hf_model(tmp_path / "other", seed=b"other weights")
    bundle = sign_model(other, private, tmp_path / "other.sig")
    with pytest.raises(InteropError, match=r"model-00001-of-00002\.safetensors: modified"):
        check_bundle(model, bundle, public)


def test_sharded_and_blake2_bundles_are_refused_before_verification(
    signed: tuple[Path, ...], tmp_path: Path
) -> None:
    model, _, private, _ = signed
    sharded = sign_model(model, private, tmp_path / "sharded.sig", shard_size=100_000)
    blake = sign_model(model, private, tmp_path / "blake.sig", algorithm="blake2")
    not_a_key = tmp_path / "missing.pem"  # never read: the bundle is refused first
    with pytest.raises(InteropError, match="shard") as caught:
        check_bundle(model, sharded, not_a_key)
    assert caught.value.code == "unsupported-bundle"
    with pytest.raises(InteropError, match="blake2"):
        check_bundle(model, blake, not_a_key)


def rewrite_statement(bundle: Path, change: dict[str, object], out: Path) -> Path:
    document = json.loads(bundle.read_text())
    statement = json.loads(base64.b64decode(document["dsseEnvelope"]["payload"]))
    statement["predicate"]["serialization"].update(change)
    payload = json.dumps(statement).encode()
    document["dsseEnvelope"]["payload"] = base64.b64encode(payload).decode()
    out.write_text(json.dumps(document))
    return out


def test_a_bundle_leaving_out_more_than_git_is_refused(
    signed: tuple[Path, ...], tmp_path: Path
) -> None:
    _, bundle, _, _ = signed
    changed = rewrite_statement(bundle, {"ignore_paths": [".git", "secret.bin"]}, tmp_path / "x")
    with pytest.raises(InteropError, match=r"leaves out secret\.bin"):
        read_bundle(changed)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("not json", "bad-bundle"),
        ("{}", "bad-bundle"),
        ('{"dsseEnvelope": {"payloadType": "text/plain", "payload": ""}}', "bad-bundle"),
        ('{"dsseEnvelope": {"payloadType": "' + PAYLOAD_TYPE + '", "payload": "!"}}', "bad-bundle"),
    ],
)
def test_malformed_bundles_are_refused(tmp_path: Path, text: str, code: str) -> None:
    path = tmp_path / "bundle.sig"
    path.write_text(text)
    with pytest.raises(InteropError) as caught:
        read_bundle(path)
    assert caught.value.code == code


def test_a_file_is_not_a_model_directory(signed: tuple[Path, ...], tmp_path: Path) -> None:
    model, bundle, _, public = signed
    lone = tmp_path / "lone.bin"
    shutil.copy(model / "config.json", lone)
    with pytest.raises(InteropError) as caught:
        check_bundle(lone, bundle, public)
    assert caught.value.code == "not-a-directory"


def test_public_key_must_be_an_ec_pem(tmp_path: Path) -> None:
    (tmp_path / "junk.pem").write_text("junk")
    with pytest.raises(InteropError, match="not a PEM public key"):
        key_fingerprint(tmp_path / "junk.pem")
    with pytest.raises(InteropError, match="cannot read"):
        key_fingerprint(tmp_path / "absent.pem")


def test_differences_are_sorted_by_kind() -> None:
    signed = {"a": "sha256:1", "b": "sha256:2", "c": "sha256:3"}
    found = {"a": "sha256:1", "b": "sha256:9", "d": "sha256:4"}
    assert differences(signed, found) == [
        "b: modified",
        "c: signed, not in the directory",
        "d: not in the bundle",
    ]


def test_only_top_level_git_entries_are_left_out(tmp_path: Path) -> None:
    model = make_hf_model(tmp_path / "model")
    (model / "notes" / ".gitignore").write_text("*.bak\n")  # nested: signed and hashed
    private, public = make_signing_key(tmp_path)
    bundle = sign_model(model, private, tmp_path / "model.sig")
    assert "notes/.gitignore" in read_bundle(bundle).files
    checked = check_bundle(model, bundle, public)
    assert checked.artifact.manifest is not None
    assert "notes/.gitignore" in checked.artifact.manifest["files"]


def test_manifest_exclude_is_top_level_only_and_counts_in_the_size(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    (root / ".git").mkdir(parents=True)
    (root / ".git" / "HEAD").write_text("ref")
    (root / "sub" / ".git").mkdir(parents=True)
    (root / "sub" / ".git" / "HEAD").write_text("nested")
    (root / "a.txt").write_text("a")
    _, manifest = digest_directory(root, exclude=MODEL_SIGNING_IGNORED)
    assert sorted(manifest["files"]) == ["a.txt", "sub/.git/HEAD"]
    assert artifact_size(root, exclude=MODEL_SIGNING_IGNORED) == len("a") + len("nested")
    assert artifact_size(root) == len("a") + len("nested") + len("ref")
