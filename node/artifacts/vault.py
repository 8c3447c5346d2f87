"""Seal an artifact for storage on the nodes, and fetch one back (design §12).

``sealed(path, recipients)`` encrypts a file, or a directory packed as a deterministic
tar (``node.artifacts.tarball``), to the age recipients, in a temporary directory, and
yields the ciphertext with the ``metadata.storage`` object its record carries::

    {"scheme": "age-v1", "ciphertext_digest", "ciphertext_size", "recipients": [...]}

``fetch_artifact`` finds the record, downloads the ciphertext from the first node that
serves the right bytes (a node serving other bytes is skipped for the next), decrypts
it beside ``--out``, checks the plaintext digest (the file's, or the extracted tree's
manifest) against the record, and only then moves it to ``out``. A failure leaves
nothing at or beside ``out``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from node.artifacts.age import (
    StorageError,
    WrongIdentity,
    decrypt_file,
    encrypt_file,
    load_identities,
    parse_recipient,
    recipient_of,
)
from node.artifacts.tarball import extract_tar, write_tar
from node.artifacts.transfer import BadBlob, download
from node.client import ApiError, Client
from node.manifest import Artifact, digest_artifact, digest_directory, digest_file, is_digest

__all__ = ["SCHEME", "FetchResult", "Sealed", "fetch_artifact", "sealed", "stored_artifact"]

SCHEME = "age-v1"
Progress = Callable[[int], object]


@dataclass(frozen=True, slots=True)
class Sealed:
    artifact: Artifact
    """The plaintext's digest and layout, as the record states them."""
    ciphertext: Path
    storage: dict[str, Any]
    """The record's ``metadata.storage``."""


@contextmanager
def sealed(
    path: Path,
    recipients: Sequence[str],
    progress: Progress | None = None,
    *,
    skip_symlinks: bool = False,
) -> Iterator[Sealed]:
    """Encrypt ``path`` to ``recipients`` (``age1...``); the ciphertext lasts as long
    as the context. ``progress`` hears the plaintext bytes read."""
    if not recipients:
        raise StorageError("give at least one recipient (--encrypt-to age1...)")
    parsed = [parse_recipient(text) for text in recipients]
    with tempfile.TemporaryDirectory(prefix="ailedger-seal-") as work:
        ciphertext = Path(work) / "artifact.age"
        if path.is_dir():
            packed = Path(work) / "artifact.tar"
            with packed.open("wb") as out:
                digest, manifest, total = write_tar(
                    path, out, progress, skip_symlinks=skip_symlinks
                )
            count = len(manifest["files"])
            artifact = Artifact(path, digest, True, count, total, manifest)
            encrypt_file(packed, ciphertext, parsed)
            packed.unlink()
        else:
            artifact = digest_artifact(path, progress)
            encrypt_file(path, ciphertext, parsed)
        storage = {
            "scheme": SCHEME,
            "ciphertext_digest": digest_file(ciphertext),
            "ciphertext_size": ciphertext.stat().st_size,
            "recipients": [str(r) for r in recipients],
        }
        yield Sealed(artifact, ciphertext, storage)


@dataclass(frozen=True, slots=True)
class StoredArtifact:
    """What a record says about its stored artifact."""

    digest: str
    """The plaintext's digest (a file's, or a directory's manifest digest)."""
    is_directory: bool
    ciphertext_digest: str
    ciphertext_size: int
    recipients: list[str]


def stored_artifact(view: dict[str, Any]) -> StoredArtifact:
    """Read a record view's stored artifact; ``StorageError`` if it stores none."""
    payload = view.get("payload") if isinstance(view.get("payload"), dict) else {}
    assert isinstance(payload, dict)
    metadata = payload.get("metadata") if isinstance(payload.get("metadata"), dict) else {}
    assert isinstance(metadata, dict)
    storage = metadata.get("storage")
    digest = (
        payload.get("output_digest") if view.get("kind") == "inference" else payload.get("digest")
    )
    if not isinstance(storage, dict) or storage.get("scheme") != SCHEME:
        raise StorageError(f"record {view.get('txid')} stores no artifact on the nodes")
    cipher, size = storage.get("ciphertext_digest"), storage.get("ciphertext_size")
    recipients = storage.get("recipients")
    if not (is_digest(cipher) and is_digest(digest) and type(size) is int):
        raise StorageError(f"record {view.get('txid')}: its metadata.storage is malformed")
    layout = metadata.get("artifact")
    is_directory = isinstance(layout, dict) and layout.get("type") == "directory"
    names = [str(r) for r in recipients] if isinstance(recipients, list) else []
    return StoredArtifact(str(digest), is_directory, str(cipher), size, names)


@dataclass(frozen=True, slots=True)
class FetchResult:
    path: Path
    node: str
    """The node whose ciphertext was used."""
    stored: StoredArtifact


def fetch_artifact(
    txid: str,
    identity: Path,
    out: Path,
    nodes: Sequence[str],
    *,
    warn: Callable[[str], object] = lambda _: None,
    progress: Callable[[int | None], Progress | None] | None = None,
) -> FetchResult:
    """Fetch, check, decrypt and check again; then move into place at ``out``."""
    identities = load_identities(identity)
    if out.exists() or out.is_symlink():
        raise StorageError(f"{out} exists; choose another --out or remove it")
    if not out.parent.is_dir():
        raise StorageError(f"{out.parent} is not a directory")
    stored = stored_artifact(_record(txid, nodes, warn))
    mine = {recipient_of(i) for i in identities}
    if stored.recipients and not mine & set(stored.recipients):
        raise WrongIdentity(
            f"the identity in {identity} ({', '.join(sorted(mine))}) is not one of the "
            f"artifact's recipients ({', '.join(stored.recipients)})"
        )
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.fetch-", dir=out.parent))
    try:
        ciphertext = work / "artifact.age"
        source = _download(stored, ciphertext, nodes, warn, progress)
        plain = work / "artifact"
        decrypt_file(ciphertext, plain, identities)
        ciphertext.unlink()
        result = _unpacked(plain, work / "tree") if stored.is_directory else plain
        found = digest_directory(result)[0] if stored.is_directory else digest_file(result)
        if found != stored.digest:
            raise StorageError(
                f"the decrypted artifact hashes to {found}, not the record's {stored.digest}"
            )
        os.rename(result, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return FetchResult(out, source, stored)


def _record(txid: str, nodes: Sequence[str], warn: Callable[[str], object]) -> dict[str, Any]:
    problems = []
    for url in nodes:
        try:
            with Client(url) as client:
                return client.record(txid)
        except ApiError as exc:
            problems.append(f"{url}: {exc.message}")
            warn(f"{url}: cannot read record {txid}: {exc.code}: {exc.message}")
    raise StorageError(f"no node gave record {txid} ({'; '.join(problems) or 'no --node'})")


def _download(
    stored: StoredArtifact,
    target: Path,
    nodes: Sequence[str],
    warn: Callable[[str], object],
    progress: Callable[[int | None], Progress | None] | None,
) -> str:
    """Download the ciphertext from the first node that serves the right bytes."""
    for url in nodes:
        try:
            download(url, stored.ciphertext_digest, target, progress)
            return url
        except BadBlob as exc:
            warn(f"{exc}; not trusted for this blob, trying the next node")
        except ApiError as exc:
            warn(f"{url}: {exc.code}: {exc.message}")
        target.unlink(missing_ok=True)
    raise StorageError(
        f"no node served blob {stored.ciphertext_digest} intact (asked {', '.join(nodes)})"
    )


def _unpacked(archive: Path, tree: Path) -> Path:
    tree.mkdir()
    extract_tar(archive, tree)
    archive.unlink()
    return tree
