"""Shared helpers for transaction and ledger tests: fixed keys, payloads, signed txs.

Import the plain helpers (``from tests.consensus.conftest import make_tx, ALICE``) or use
the fixtures (``key``, ``other_key``, ``ledger``). Everything is deterministic except the
default nonce of ``make_tx``, which counts up so that two calls never collide.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import strategies as st

from consensus.keys import private_key_from_seed, public_key_hex
from consensus.ledger import MemoryLedger
from consensus.payloads import ROLES
from consensus.tx import Transaction, digest_of_bytes, sign_tx

SEED = bytes(range(32))
OTHER_SEED = bytes(range(32, 64))
TIMESTAMP = 1_795_824_000_000  # 2026-11-28T00:00:00Z, the genesis time
ALICE = private_key_from_seed(SEED)
BOB = private_key_from_seed(OTHER_SEED)
ALICE_HEX = public_key_hex(ALICE)
BOB_HEX = public_key_hex(BOB)

_nonces = itertools.count(1_000)


def key_from_seed(seed: int | bytes) -> Ed25519PrivateKey:
    """A fixed key: from 32 bytes, or from one byte value repeated 32 times."""
    return private_key_from_seed(bytes([seed]) * 32 if isinstance(seed, int) else seed)


def digest(data: str | bytes) -> str:
    """The "sha256:<hex>" digest of some text or bytes."""
    return digest_of_bytes(data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data)


def make_tx(
    key: Ed25519PrivateKey,
    kind: str,
    payload: dict[str, Any],
    nonce: int | None = None,
    *,
    network: str = "regtest",
    timestamp: int = TIMESTAMP,
) -> Transaction:
    """A signed, well-formed transaction; ``nonce`` defaults to a fresh counter value."""
    return sign_tx(
        key,
        network=network,
        kind=kind,
        payload=payload,
        nonce=next(_nonces) if nonce is None else nonce,
        timestamp=timestamp,
    )


def dataset_payload(
    name: str = "corpus", *, derived_from: Iterable[str] = (), **extra: Any
) -> dict[str, Any]:
    """A dataset payload whose digest is derived from ``name``."""
    payload: dict[str, Any] = {"name": name, "digest": digest(f"dataset:{name}"), **extra}
    if derived_from:
        payload["derived_from"] = list(derived_from)
    return payload


def model_payload(
    name: str = "classifier", *, inputs: Iterable[tuple[str, str]] = (), **extra: Any
) -> dict[str, Any]:
    """A model payload; ``inputs`` are (ref, role) pairs."""
    payload: dict[str, Any] = {"name": name, "digest": digest(f"model:{name}"), **extra}
    if inputs:
        payload["inputs"] = [{"ref": ref, "role": role} for ref, role in inputs]
    return payload


def inference_payload(model: str, label: str = "x", **extra: Any) -> dict[str, Any]:
    return {
        "model": model,
        "input_digest": digest(f"input:{label}"),
        "output_digest": digest(f"output:{label}"),
        **extra,
    }


def attestation_payload(subject: str, type_: str = "evaluation", **extra: Any) -> dict[str, Any]:
    return {"subject": subject, "type": type_, "result": {"passed": True}, **extra}


def revocation_payload(subject: str, **extra: Any) -> dict[str, Any]:
    return {"subject": subject, **extra}


# --- hypothesis strategies ---------------------------------------------------------------

SAFE_INT = 2**53 - 1


def _is_ijson_float(value: float) -> bool:
    """Not an integral float that RFC 8785 writes as out-of-range integer digits."""
    return not (1e21 > abs(value) > SAFE_INT and value.is_integer())


hex64 = st.text("0123456789abcdef", min_size=64, max_size=64)
digests = hex64.map(lambda h: "sha256:" + h)
short_text = st.text(min_size=1, max_size=20)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-SAFE_INT, SAFE_INT)
    | st.floats(allow_nan=False, allow_infinity=False).filter(_is_ijson_float)
    | st.text(max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
json_objects = st.dictionaries(st.text(max_size=8), json_values, max_size=4)


def _optional(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=fields)


def payloads(kind: str) -> st.SearchStrategy[dict[str, Any]]:
    """Random valid payloads of ``kind`` (references are random txids)."""
    required: dict[str, st.SearchStrategy[Any]]
    if kind == "dataset":
        required = {"name": short_text, "digest": digests}
        optional = _optional(
            size=st.integers(0, SAFE_INT),
            uri=short_text,
            license=short_text,
            derived_from=st.lists(hex64, max_size=3),
            metadata=json_objects,
        )
    elif kind == "model":
        inputs = st.fixed_dictionaries({"ref": hex64, "role": st.sampled_from(ROLES)})
        required = {"name": short_text, "digest": digests}
        optional = _optional(
            version=short_text,
            framework=short_text,
            inputs=st.lists(inputs, max_size=3),
            hyperparameters=json_objects,
            code_digest=digests,
            metrics=json_objects,
            metadata=json_objects,
        )
    elif kind == "inference":
        required = {"model": hex64, "input_digest": digests, "output_digest": digests}
        optional = _optional(metadata=json_objects)
    elif kind == "attestation":
        required = {"subject": hex64, "type": short_text, "result": json_objects}
        optional = _optional(metadata=json_objects)
    else:
        required = {"subject": hex64}
        optional = _optional(reason=short_text)
    return st.tuples(st.fixed_dictionaries(required), optional).map(lambda p: {**p[0], **p[1]})


kinds_and_payloads = st.sampled_from(
    ("dataset", "model", "inference", "attestation", "revocation")
).flatmap(lambda kind: st.tuples(st.just(kind), payloads(kind)))


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture
def key() -> Ed25519PrivateKey:
    """Alice: the key with seed bytes(range(32))."""
    return ALICE


@pytest.fixture
def other_key() -> Ed25519PrivateKey:
    """Bob: the key with seed bytes(range(32, 64))."""
    return BOB


@pytest.fixture
def ledger() -> MemoryLedger:
    """An empty in-memory ledger."""
    return MemoryLedger()
