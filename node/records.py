"""Records of each kind, built from what their author has, signed and submitted.

``register_dataset`` and ``register_model`` hash a file or directory (``node.manifest``)
and register its digest; ``record_inference``, ``attest`` and ``revoke`` record what
was done with, or said about, a record. Each signs with the author's key, with a fresh
nonce (``new_nonce``) and the current time (``submit_record``), and hands the signed
record to ``submit_signed``: ``node.client.Client`` is the ``RecordWriter`` that sends it
to a node.
"""

from __future__ import annotations

import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from consensus.tx import Transaction, sign_tx
from node.manifest import Artifact, digest_artifact

__all__ = ["RecordWriter", "new_nonce", "now_ms", "with_layout"]

_NONCE_MASK = 2**53 - 1
_nonce_lock = threading.Lock()
_last_nonce = 0


def now_ms() -> int:
    """The current time in milliseconds since the Unix epoch (a transaction timestamp)."""
    return time.time_ns() // 1_000_000


def new_nonce() -> int:
    """A nonce unique within this process: the time in microseconds, below 2**53.

    Two calls never return the same value, and values grow while the clock does, so one
    signer using one process never reuses a (signer, nonce) pair. Callers who sign from
    several processes or machines, or who need strict ordering, pass their own nonces.
    """
    global _last_nonce  # noqa: PLW0603 - one counter per process is the point
    with _nonce_lock:
        nonce = max(time.time_ns() // 1000 & _NONCE_MASK, _last_nonce + 1)
        _last_nonce = nonce
        return nonce


class RecordWriter(ABC):
    """Sign-and-submit of each kind of record; a subclass says how a signed record
    reaches a node (``submit_signed``) and which network is the default."""

    @abstractmethod
    def network(self) -> str:
        """The network records are signed for when the caller names none."""

    @abstractmethod
    def submit_signed(self, tx: Transaction) -> str:
        """Send a signed record on; its txid."""

    def submit_record(
        self,
        kind: str,
        payload: Mapping[str, Any],
        *,
        key: Ed25519PrivateKey,
        network: str | None = None,
        nonce: int | None = None,
        timestamp: int | None = None,
    ) -> str:
        """Sign a record and submit it; its txid. Optional fields that are ``None`` or
        empty are left out. ``consensus.errors.InvalidTx`` if it would be malformed."""
        tx = sign_tx(
            key,
            network=network or self.network(),
            kind=kind,
            payload={k: v for k, v in payload.items() if v is not None},  # null is refused
            nonce=new_nonce() if nonce is None else nonce,
            timestamp=now_ms() if timestamp is None else timestamp,
        )
        return self.submit_signed(tx)

    def register_dataset(
        self,
        path: str | os.PathLike[str] | Artifact,
        *,
        key: Ed25519PrivateKey,
        name: str,
        network: str | None = None,
        uri: str | None = None,
        license: str | None = None,
        derived_from: Sequence[str] = (),
        metadata: Mapping[str, Any] | None = None,
        nonce: int | None = None,
        progress: Callable[[int], object] | None = None,
    ) -> str:
        """Hash a file or directory and register it as a dataset; the txid.

        ``path`` may be an ``Artifact`` already hashed (``node.manifest.digest_artifact``).
        """
        artifact = path if isinstance(path, Artifact) else digest_artifact(path, progress)
        payload = {
            "name": name,
            "digest": artifact.digest,
            "size": artifact.total_size,
            "uri": uri,
            "license": license,
            "derived_from": list(derived_from) or None,
            "metadata": with_layout(metadata, artifact),
        }
        return self.submit_record("dataset", payload, key=key, network=network, nonce=nonce)

    def register_model(
        self,
        path: str | os.PathLike[str] | Artifact,
        *,
        key: Ed25519PrivateKey,
        name: str,
        inputs: Iterable[tuple[str, str]] = (),
        version: str | None = None,
        framework: str | None = None,
        hyperparameters: Mapping[str, Any] | None = None,
        metrics: Mapping[str, Any] | None = None,
        code_digest: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        network: str | None = None,
        nonce: int | None = None,
        progress: Callable[[int], object] | None = None,
    ) -> str:
        """Hash a model file or directory and register it; ``inputs`` are (txid, role)."""
        artifact = path if isinstance(path, Artifact) else digest_artifact(path, progress)
        payload = {
            "name": name,
            "digest": artifact.digest,
            "version": version,
            "framework": framework,
            "inputs": [{"ref": ref, "role": role} for ref, role in inputs] or None,
            "hyperparameters": _plain(hyperparameters),
            "code_digest": code_digest,
            "metrics": _plain(metrics),
            "metadata": with_layout(metadata, artifact),
        }
        return self.submit_record("model", payload, key=key, network=network, nonce=nonce)

    def record_inference(
        self,
        model_txid: str,
        input_digest: str,
        output_digest: str,
        *,
        key: Ed25519PrivateKey,
        metadata: Mapping[str, Any] | None = None,
        network: str | None = None,
        nonce: int | None = None,
    ) -> str:
        """Record that ``model_txid`` turned ``input_digest`` into ``output_digest``."""
        payload = {
            "model": model_txid,
            "input_digest": input_digest,
            "output_digest": output_digest,
            "metadata": _plain(metadata),
        }
        return self.submit_record("inference", payload, key=key, network=network, nonce=nonce)

    def attest(
        self,
        subject: str,
        type: str,
        result: Mapping[str, Any],
        *,
        key: Ed25519PrivateKey,
        metadata: Mapping[str, Any] | None = None,
        network: str | None = None,
        nonce: int | None = None,
    ) -> str:
        """Attest something about a record (an evaluation, an audit); ``result`` is free."""
        payload = {
            "subject": subject,
            "type": type,
            "result": dict(result),
            "metadata": _plain(metadata),
        }
        return self.submit_record("attestation", payload, key=key, network=network, nonce=nonce)

    def revoke(
        self,
        subject: str,
        *,
        key: Ed25519PrivateKey,
        reason: str | None = None,
        network: str | None = None,
        nonce: int | None = None,
    ) -> str:
        """Revoke one of your own records (the key must be the subject's signer)."""
        payload = {"subject": subject, "reason": reason}
        return self.submit_record("revocation", payload, key=key, network=network, nonce=nonce)


def _plain(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """An optional free-form object; an empty one is left out like a missing one."""
    return dict(value) if value else None


def with_layout(metadata: Mapping[str, Any] | None, artifact: Artifact) -> dict[str, Any] | None:
    """User metadata, plus a directory's file count and size (not its whole manifest,
    which would not fit in 8 KiB; the digest already binds it)."""
    merged = dict(metadata or {})
    if artifact.is_directory:
        merged.setdefault(
            "artifact",
            {
                "type": "directory",
                "manifest_version": 1,
                "files": artifact.file_count,
                "bytes": artifact.total_size,
            },
        )
    return merged or None
