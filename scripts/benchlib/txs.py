"""Signed transactions for the benchmarks: realistic payloads, fresh (signer, nonce) pairs."""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterable
from typing import Any

from consensus.keys import private_key_from_seed
from consensus.tx import Transaction, digest_of_bytes, sign_tx, signing_message

__all__ = ["TxFactory", "body_bytes", "message_of"]

TIMESTAMP = 1_795_824_000_000  # the genesis time; nodes do not check a tx's clock
SEED = bytes(range(32))  # the tests' Alice


def _digest(label: str) -> str:
    return digest_of_bytes(label.encode())


def message_of(tx: Transaction) -> bytes:
    """Exactly what ``verify_signature`` checks: the domain tag and the canonical body."""
    return signing_message(tx.body_bytes)


def body_bytes(tx: Transaction) -> bytes:
    """A JSON request body for one transaction, serialised ahead of any timing."""
    return json.dumps(tx.to_json()).encode()


class TxFactory:
    """Signs transactions with one key and a counting nonce, so that none collide."""

    def __init__(self, seed: bytes = SEED, network: str = "regtest") -> None:
        self._key = private_key_from_seed(seed)
        self._network = network
        self._nonces = itertools.count(1)

    def sign(self, kind: str, payload: dict[str, Any]) -> Transaction:
        return sign_tx(
            self._key,
            network=self._network,
            kind=kind,
            payload=payload,
            nonce=next(self._nonces),
            timestamp=TIMESTAMP,
        )

    def dataset(self, name: str, derived_from: Iterable[str] = ()) -> Transaction:
        """A dataset record like a user would register: size, uri, license, metadata."""
        payload: dict[str, Any] = {
            "name": name,
            "digest": _digest(f"dataset:{name}"),
            "size": 1_234_567,
            "uri": f"s3://bench-corpora/{name}.tar",
            "license": "CC-BY-4.0",
            "metadata": {"rows": 52_000, "source": "benchmark"},
        }
        parents = list(derived_from)
        if parents:
            payload["derived_from"] = parents
        return self.sign("dataset", payload)

    def model(self, name: str) -> Transaction:
        """A model record with three inputs, hyperparameters and metrics (about 1 KB)."""
        refs = [hashlib.sha256(f"{name}:{i}".encode()).hexdigest() for i in range(3)]
        roles = ("training_data", "validation_data", "base_model")
        payload = {
            "name": name,
            "digest": _digest(f"model:{name}"),
            "version": "1.4.2",
            "framework": "pytorch-2.3",
            "inputs": [{"ref": r, "role": role} for r, role in zip(refs, roles, strict=True)],
            "hyperparameters": {"lr": 0.0003, "batch_size": 256, "epochs": 30, "seed": 7},
            "code_digest": _digest(f"code:{name}"),
            "metrics": {"accuracy": 0.9412, "f1": 0.9307, "loss": 0.1875, "auc": 0.9861},
            "metadata": {"trained_on": "8xA100", "notes": "benchmark fixture"},
        }
        return self.sign("model", payload)

    def datasets(self, count: int, prefix: str) -> list[Transaction]:
        return [self.dataset(f"{prefix}-{i}") for i in range(count)]
