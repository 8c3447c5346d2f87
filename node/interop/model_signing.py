"""OpenSSF model-signing bundles, checked offline and tied to this ledger's digest (§11).

A model-signing bundle (``model_signing`` on PyPI, key-based signing) is a Sigstore
bundle whose DSSE envelope carries an in-toto Statement: its predicate lists every file of
the model with its SHA-256 (``resources``), and says how they were hashed
(``serialization``). ``check_bundle`` accepts a bundle for a directory when:

1. it is the ``files`` method with ``sha256`` (a sharded or BLAKE2/3 bundle is refused
   here, before any verification: model-signing 1.1.1 cannot verify its own sharded
   bundles, and a shard or BLAKE digest is not the SHA-256 this ledger binds), and it
   leaves out nothing but model-signing's defaults (``MODEL_SIGNING_IGNORED``);
2. the directory, hashed by ``node.manifest`` without those top-level entries, holds
   exactly the bundle's files with their digests (otherwise the files that differ are
   named), so the ledger digest rebuilt from the bundle's resources,
   ``sha256(JCS({"version": 1, "files": {NFC(name): "sha256:" + hex}}))``, is the
   directory's;
3. model-signing's own verifier accepts the bundle for the directory with the public key.

The attestation ``register`` records (type ``model-signing/v1``) holds ``result()``:
``payload_digest`` (SHA-256 of the DSSE payload bytes exactly as the bundle carries them:
their key order follows PYTHONHASHSEED, so they are never re-serialised),
``subject_digest``, ``predicate_type`` and ``key_fingerprint`` (SHA-256 of the public
key's DER SubjectPublicKeyInfo).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import os
import sys
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from consensus.encoding import canonical_json
from node.interop.errors import InteropError
from node.manifest import MANIFEST_VERSION, Artifact, Progress, digest_artifact

__all__ = [
    "ATTESTATION_TYPE",
    "MODEL_SIGNING_IGNORED",
    "PAYLOAD_TYPE",
    "Bundle",
    "CheckedBundle",
    "check_bundle",
    "differences",
    "key_fingerprint",
    "read_bundle",
]

ATTESTATION_TYPE = "model-signing/v1"
MODEL_SIGNING_IGNORED = (".git", ".gitattributes", ".github", ".gitignore")
"""What model-signing leaves out of a directory by default (top level only)."""
PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://model_signing/signature/v1.0"


@dataclass(frozen=True, slots=True)
class Bundle:
    """What a bundle claims, read but not yet verified."""

    payload: bytes
    """The DSSE payload, decoded from base64, exactly as signed."""
    subject_name: str
    subject_digest: str
    predicate_type: str
    files: dict[str, str]
    """NFC name -> ``"sha256:<hex>"``: the statement's resources."""

    @property
    def payload_digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.payload).hexdigest()

    @property
    def ledger_digest(self) -> str:
        """This ledger's directory digest of the files the bundle lists (``node.manifest``)."""
        manifest = {"version": MANIFEST_VERSION, "files": dict(sorted(self.files.items()))}
        return "sha256:" + hashlib.sha256(canonical_json(manifest)).hexdigest()


@dataclass(frozen=True, slots=True)
class CheckedBundle:
    """A bundle verified against a directory: the directory's artifact and the key."""

    bundle: Bundle
    artifact: Artifact
    key_fingerprint: str

    def metadata(self, given: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The model record's metadata: ``given``, plus the directory's layout saying
        which top-level entries its digest leaves out (``export --artifact`` reads it)."""
        return {
            **(given or {}),
            "artifact": {
                "type": "directory",
                "manifest_version": MANIFEST_VERSION,
                "files": self.artifact.file_count,
                "bytes": self.artifact.total_size,
                "excludes": list(MODEL_SIGNING_IGNORED),
            },
        }

    def result(self) -> dict[str, str]:
        """The ``result`` of the ``model-signing/v1`` attestation (design §11)."""
        return {
            "payload_digest": self.bundle.payload_digest,
            "subject_digest": self.bundle.subject_digest,
            "predicate_type": self.bundle.predicate_type,
            "key_fingerprint": self.key_fingerprint,
        }


def read_bundle(path: str | os.PathLike[str]) -> Bundle:
    """Parse a bundle and refuse what cannot be tied to a ledger digest (module docstring).

    Nothing is verified here: ``check_bundle`` does that.
    """
    try:
        document = json.loads(Path(path).read_bytes())
    except OSError as exc:
        raise InteropError("bad-bundle", f"cannot read {path}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise InteropError("bad-bundle", f"{path}: not JSON: {exc}") from exc
    envelope = _get(document, "dsseEnvelope", dict, path)
    if envelope.get("payloadType") != PAYLOAD_TYPE:
        raise InteropError("bad-bundle", f"{path}: the DSSE payload is not {PAYLOAD_TYPE}")
    try:
        payload = base64.b64decode(_get(envelope, "payload", str, path), validate=True)
        statement = json.loads(payload)
    except (binascii.Error, ValueError) as exc:
        raise InteropError("bad-bundle", f"{path}: the DSSE payload is not JSON") from exc
    if _get(statement, "_type", str, path) != STATEMENT_TYPE:
        raise InteropError("bad-bundle", f"{path}: the payload is not an in-toto Statement v1")
    predicate_type = _get(statement, "predicateType", str, path)
    if predicate_type != PREDICATE_TYPE:
        raise InteropError(
            "unsupported-bundle", f"{path}: predicate {predicate_type!r}, not {PREDICATE_TYPE}"
        )
    predicate = _get(statement, "predicate", dict, path)
    _check_serialization(_get(predicate, "serialization", dict, path), path)
    subject_name, subject_digest = _subject(statement, path)
    return Bundle(
        payload=payload,
        subject_name=subject_name,
        subject_digest=subject_digest,
        predicate_type=predicate_type,
        files=_files(_get(predicate, "resources", list, path), path),
    )


def _check_serialization(serialization: dict[str, Any], path: object) -> None:
    method, hash_type = serialization.get("method"), serialization.get("hash_type")
    if method == "shards":
        raise InteropError(
            "unsupported-bundle",
            f"{path}: a sharded bundle (method 'shards'): sign the model with the 'files' "
            "method; a shard's digest is not a file's sha256",
        )
    if method != "files":
        raise InteropError("unsupported-bundle", f"{path}: serialization method {method!r}")
    if hash_type != "sha256":
        raise InteropError(
            "unsupported-bundle",
            f"{path}: files hashed with {hash_type!r}: only sha256 can be tied to this ledger",
        )
    ignored = serialization.get("ignore_paths", [])
    extra = sorted(str(p) for p in ignored if p not in MODEL_SIGNING_IGNORED)
    if extra:
        raise InteropError(
            "unsupported-bundle",
            f"{path}: the bundle leaves out {', '.join(extra)}; this ledger's digest binds "
            f"every file but {', '.join(MODEL_SIGNING_IGNORED)}: sign again without "
            "--ignore-paths, with the signature written outside the model directory",
        )


def _subject(statement: dict[str, Any], path: object) -> tuple[str, str]:
    subjects = _get(statement, "subject", list, path)
    first = subjects[0] if len(subjects) == 1 else None
    digest = first.get("digest") if isinstance(first, dict) else None
    value = digest.get("sha256") if isinstance(digest, dict) else None
    name = first.get("name") if isinstance(first, dict) else None
    if not isinstance(value, str) or not isinstance(name, str):
        raise InteropError("bad-bundle", f"{path}: the statement needs one subject with a sha256")
    return name, "sha256:" + value


def _files(resources: list[Any], path: object) -> dict[str, str]:
    files: dict[str, str] = {}
    for resource in resources:
        if not isinstance(resource, dict) or not isinstance(resource.get("name"), str):
            raise InteropError("bad-bundle", f"{path}: a resource without a name")
        name, algorithm = resource["name"], resource.get("algorithm")
        if algorithm != "sha256":
            raise InteropError(
                "unsupported-bundle", f"{path}: {name} is hashed with {algorithm!r}, not sha256"
            )
        digest = str(resource.get("digest", "")).lower()
        key = unicodedata.normalize("NFC", name)
        if len(digest) != 64 or key in files:
            raise InteropError("bad-bundle", f"{path}: resource {name!r} is malformed or twice")
        files[key] = "sha256:" + digest
    return files


def _get(container: Any, key: str, kind: type, path: object) -> Any:
    value = container.get(key) if isinstance(container, dict) else None
    if not isinstance(value, kind):
        raise InteropError("bad-bundle", f"{path}: no {key!r} ({kind.__name__})")
    return value


def key_fingerprint(path: str | os.PathLike[str]) -> str:
    """``"sha256:"`` of the EC public key's DER SubjectPublicKeyInfo in PEM file ``path``."""
    try:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
    except OSError as exc:
        raise InteropError("bad-public-key", f"cannot read {path}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise InteropError("bad-public-key", f"{path}: not a PEM public key") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise InteropError(
            "bad-public-key", f"{path}: model-signing keys are EC (P-256/384/521) keys"
        )
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "sha256:" + hashlib.sha256(der).hexdigest()


def differences(signed: Mapping[str, str], found: Mapping[str, str]) -> list[str]:
    """One line per file that differs between the bundle and the directory, sorted."""
    both = sorted(signed.keys() & found.keys())
    lines = [f"{name}: modified" for name in both if signed[name] != found[name]]
    lines += [f"{name}: signed, not in the directory" for name in sorted(signed - found.keys())]
    lines += [f"{name}: not in the bundle" for name in sorted(found.keys() - signed.keys())]
    return lines


def check_bundle(
    model_dir: str | os.PathLike[str],
    bundle_path: str | os.PathLike[str],
    public_key_path: str | os.PathLike[str],
    progress: Progress | None = None,
) -> CheckedBundle:
    """Verify ``bundle_path`` for ``model_dir`` with the key (module docstring, 1-3)."""
    bundle = read_bundle(bundle_path)
    fingerprint = key_fingerprint(public_key_path)
    if not Path(model_dir).is_dir():
        raise InteropError("not-a-directory", f"{model_dir}: a bundle goes with a directory")
    artifact = digest_artifact(model_dir, progress, exclude=MODEL_SIGNING_IGNORED)
    assert artifact.manifest is not None
    differ = differences(bundle.files, artifact.manifest["files"])
    if differ:
        raise InteropError(
            "bundle-mismatch",
            f"{model_dir} is not the model the bundle signs; files that differ: "
            + "; ".join(differ),
        )
    if bundle.ledger_digest != artifact.digest:  # the same files: cannot differ
        raise InteropError("bundle-mismatch", f"{model_dir}: digest {artifact.digest} differs")
    _verify_with_model_signing(model_dir, bundle_path, public_key_path)
    return CheckedBundle(bundle, artifact, fingerprint)


def _verify_with_model_signing(
    model_dir: str | os.PathLike[str],
    bundle_path: str | os.PathLike[str],
    public_key_path: str | os.PathLike[str],
) -> None:
    """model-signing's own offline verification (signature, statement, every file)."""
    try:
        from cryptography.exceptions import InvalidSignature  # noqa: PLC0415
        from model_signing import verifying  # noqa: PLC0415 - an optional extra, and slow
    except ImportError as exc:
        raise InteropError(
            "missing-extra",
            f"model-signing bundles need the extra: pip install 'ailedger[model-signing]' ({exc})",
        ) from exc
    config = verifying.Config().use_elliptic_key_verifier(  # type: ignore[no-untyped-call]
        public_key=public_key_path
    )
    try:
        # It prints warnings on stdout, where this command prints its answer.
        with contextlib.redirect_stdout(sys.stderr):
            config.verify(Path(model_dir), Path(bundle_path))
    except (ValueError, KeyError, TypeError, InvalidSignature) as exc:
        detail = str(exc) or type(exc).__name__
        raise InteropError(
            "bad-signature", f"model-signing does not verify the bundle with this key: {detail}"
        ) from exc
