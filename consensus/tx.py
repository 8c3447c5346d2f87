"""Transactions: the signed records of design section 2 (normative).

A transaction is a JSON object with exactly these fields::

    version    int  1
    network    str  the network name, 1..128 characters (``check_tx`` compares it)
    kind       str  dataset | model | inference | attestation | revocation
    payload    obj  kind-specific: ``consensus.payloads`` states its fields
    signer     str  raw Ed25519 public key, 64 lowercase hex
    nonce      int  0 <= nonce < 2**53
    timestamp  int  client time in ms since the epoch, 0 <= t < 2**53
    signature  str  Ed25519 signature, 128 lowercase hex

Context-free rules, with their reject codes:

- ``bad-tx-schema``: exact key sets at the top level and in every payload object; strict
  JSON types (a bool is not an int, nor is a float; null is no value for a named field);
  the payload's rules are in ``consensus.payloads``.
- ``bad-json``: the transaction has an RFC 8785 form: every number is I-JSON (no NaN or
  infinity; a number written as an integer, e.g. the float 2.0**53 that RFC 8785 writes
  as 9007199254740992, lies within +-(2**53 - 1)), strings are valid Unicode, and JSON
  containers nest at most ``consensus.encoding.MAX_JSON_DEPTH`` deep (the transaction
  object is depth 1).
- ``tx-too-large``: ``len(leaf_bytes) <= MAX_TX_BYTES`` (and ``<= params.max_tx_bytes``).
- ``bad-signature``: Ed25519 over ``SIGNING_DOMAIN + body_bytes`` by a valid ``signer``.
- ``wrong-network``: ``network == params.network``.

``body`` is the transaction without ``signature``, ``body_bytes`` its RFC 8785 bytes,
``txid`` the SHA-256 hex of ``body_bytes``, and ``leaf_bytes`` the RFC 8785 bytes of the
whole transaction (the Merkle leaf). Rules about other records (references, nonces,
revocations) live in ``consensus.ledger``.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from consensus.encoding import canonical_bytes, encode_canonical, is_plain, sha256_hex
from consensus.errors import InvalidTx
from consensus.keys import public_key_hex, signature_problem
from consensus.params import ConsensusParams
from consensus.payloads import DIGEST_PATTERN, FREE_FIELDS, KINDS, TXID_PATTERN, check_payload

__all__ = [
    "MAX_TX_BYTES",
    "SIGNING_DOMAIN",
    "TX_VERSION",
    "Transaction",
    "bad_signature",
    "check_tx",
    "check_tx_fields",
    "digest_of_bytes",
    "is_digest",
    "is_txid",
    "sign_tx",
    "signature_job",
    "signing_message",
    "verify_signature",
]

TX_VERSION = 1
MAX_TX_BYTES = 8192
SIGNING_DOMAIN = b"ailedger/tx/v1\n"
_NUMBER_LIMIT = 2**53
_DIGEST_RE = re.compile(DIGEST_PATTERN[1:-1])
_TXID_RE = re.compile(TXID_PATTERN[1:-1])
_SIGNATURE_RE = re.compile(r"[0-9a-f]{128}")

# -------------------------------------------------------------------------- top level

_TOP_KEYS = frozenset(
    ("version", "network", "kind", "payload", "signer", "nonce", "timestamp", "signature")
)


def _schema(field: str, what: str) -> InvalidTx:
    return InvalidTx("bad-tx-schema", f"{field}: {what}")


def _check_keys(obj: Any) -> None:
    """The transaction is an object with exactly the eight top-level fields."""
    if not isinstance(obj, dict):
        raise _schema("transaction", f"must be a JSON object, not {type(obj).__name__}")
    if obj.keys() != _TOP_KEYS:
        missing = sorted(_TOP_KEYS - obj.keys())
        if missing:
            raise _schema(missing[0], "required field missing")
        unknown = sorted(map(str, obj.keys() - _TOP_KEYS))
        raise _schema(unknown[0], "unknown field")


def _check_counter(obj: dict[str, Any], field: str) -> None:
    value = obj[field]
    if type(value) is not int:
        raise _schema(field, f"must be an integer, not {type(value).__name__}")
    if not 0 <= value < _NUMBER_LIMIT:
        raise _schema(field, "must be in [0, 2**53)")


def _check_top(obj: Any) -> None:
    """Every top-level field has its exact JSON type and range (payload aside)."""
    _check_keys(obj)
    if type(obj["version"]) is not int or obj["version"] != TX_VERSION:
        raise _schema("version", f"must be the integer {TX_VERSION}")
    network = obj["network"]
    if type(network) is not str or not 1 <= len(network) <= 128:
        raise _schema("network", "must be a string of 1 to 128 characters")
    if type(obj["kind"]) is not str or obj["kind"] not in KINDS:
        raise _schema("kind", f"must be one of {', '.join(KINDS)}")
    if not isinstance(obj["payload"], dict):
        raise _schema("payload", "must be a JSON object")
    if type(obj["signer"]) is not str or not _TXID_RE.fullmatch(obj["signer"]):
        raise _schema("signer", "must be 64 lowercase hex characters")
    _check_counter(obj, "nonce")
    _check_counter(obj, "timestamp")
    if type(obj["signature"]) is not str or not _SIGNATURE_RE.fullmatch(obj["signature"]):
        raise _schema("signature", "must be 128 lowercase hex characters")


# ------------------------------------------------------------------------ transaction


def _checked_leaf_bytes(obj: dict[str, Any]) -> bytes:
    """RFC 8785 bytes of a schema-checked transaction, walking only its free-form objects
    (the rest is plain: the schema allows nothing else)."""
    payload = obj["payload"]
    fields = [name for name in FREE_FIELDS[obj["kind"]] if name in payload]
    # depth 3: transaction, payload, then the free-form object itself
    return encode_canonical(obj, plain=all([is_plain(payload[name], 3) for name in fields]))


_REF_FIELDS = {"inference": "model", "attestation": "subject", "revocation": "subject"}


@dataclass(frozen=True)
class Transaction:
    """A well-formed transaction; build it with ``from_json`` or ``sign_tx``.

    ``payload`` is the object as received, so the canonical bytes are exactly the signed
    ones; treat it as read-only. ``to_json`` returns a fresh copy.
    """

    version: int
    network: str
    kind: str
    payload: dict[str, Any]
    signer: str
    nonce: int
    timestamp: int
    signature: str

    def __hash__(self) -> int:
        return hash(self.leaf_bytes)

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (a worker process sends parsed transactions back) with the fields and
        ``leaf_bytes`` and ``txid`` as computed, but not the bytes cut from ``leaf_bytes``
        again on demand: a block of 10 pickles to a quarter fewer bytes, in half the time."""
        state = dict(self.__dict__)
        state.pop("body", None)
        state.pop("body_bytes", None)
        return state

    @cached_property
    def body(self) -> dict[str, Any]:
        """The transaction without its signature: what is signed and hashed."""
        return {
            "version": self.version,
            "network": self.network,
            "kind": self.kind,
            "payload": self.payload,
            "signer": self.signer,
            "nonce": self.nonce,
            "timestamp": self.timestamp,
        }

    @cached_property
    def leaf_bytes(self) -> bytes:
        """RFC 8785 bytes of the whole transaction: the Merkle leaf."""
        return canonical_bytes({**self.body, "signature": self.signature})

    @cached_property
    def body_bytes(self) -> bytes:
        """RFC 8785 bytes of ``body``, cut out of ``leaf_bytes`` so the two always agree.

        RFC 8785 sorts keys, so the "signature" member sits between "payload" and
        "signer" with a comma after it; the last match is the top-level one, as only hex
        and integers follow it.
        """
        member = b'"signature":' + canonical_bytes(self.signature) + b","
        leaf = self.leaf_bytes
        at = leaf.rindex(member)
        return leaf[:at] + leaf[at + len(member) :]

    @cached_property
    def txid(self) -> str:
        """Lowercase hex SHA-256 of ``body_bytes``."""
        return sha256_hex(self.body_bytes)

    @property
    def size(self) -> int:
        """Canonical size: ``len(leaf_bytes)``."""
        return len(self.leaf_bytes)

    def to_json(self) -> dict[str, Any]:
        """A fresh JSON object of the transaction (safe to modify)."""
        result: dict[str, Any] = json.loads(self.leaf_bytes)
        return result

    def refs(self) -> list[tuple[str, str]]:
        """(referenced txid, its role) in payload order.

        Roles: "derived_from" (dataset), the input's role (model), "model" (inference),
        "subject" (attestation, revocation).
        """
        payload = self.payload
        if self.kind == "dataset":
            return [(ref, "derived_from") for ref in payload.get("derived_from", ())]
        if self.kind == "model":
            return [(item["ref"], item["role"]) for item in payload.get("inputs", ())]
        field = _REF_FIELDS[self.kind]
        return [(payload[field], field)]

    @classmethod
    def from_json(cls, obj: Any) -> Transaction:
        """Validate a parsed JSON object and canonicalise it.

        Raises ``InvalidTx`` with ``bad-tx-schema``, ``bad-json`` or ``tx-too-large``.
        The signature is not checked here: see ``verify_signature`` and ``check_tx``.
        """
        _check_top(obj)
        check_payload(obj["kind"], obj["payload"])
        tx = cls(**obj)
        tx.__dict__["leaf_bytes"] = _checked_leaf_bytes(obj)  # seeds the cached property
        if tx.size > MAX_TX_BYTES:
            raise InvalidTx(
                "tx-too-large",
                f"canonical size {tx.size} bytes exceeds {MAX_TX_BYTES}",
                txid=tx.txid,
            )
        return tx


# -------------------------------------------------------------------------- signatures


def signing_message(body_bytes: bytes) -> bytes:
    """What the signer signs: the domain tag, then the canonical body."""
    return SIGNING_DOMAIN + body_bytes


def sign_tx(
    private_key: Ed25519PrivateKey,
    *,
    network: str,
    kind: str,
    payload: dict[str, Any],
    nonce: int,
    timestamp: int,
) -> Transaction:
    """Build, validate and sign a transaction (``InvalidTx`` if it would be malformed)."""
    body = {
        "version": TX_VERSION,
        "network": network,
        "kind": kind,
        "payload": payload,
        "signer": public_key_hex(private_key),
        "nonce": nonce,
        "timestamp": timestamp,
    }
    draft = Transaction.from_json({**body, "signature": "00" * 64})
    signature = private_key.sign(signing_message(draft.body_bytes)).hex()
    return Transaction.from_json({**body, "signature": signature})


def verify_signature(tx: Transaction) -> None:
    """``bad-signature`` unless ``tx.signature`` is the signer's signature of its body.

    A signer that is not a valid, canonical, large-order Ed25519 point fails too.
    """
    problem = signature_problem(*signature_job(tx))
    if problem is not None:
        raise bad_signature(tx, problem)


def signature_job(tx: Transaction) -> tuple[str, str, bytes]:
    """What ``signature_problem`` checks for ``tx``: signer, signature, signed message."""
    return tx.signer, tx.signature, signing_message(tx.body_bytes)


def bad_signature(tx: Transaction, problem: str) -> InvalidTx:
    """The rejection of ``tx`` for the ``problem`` that ``signature_problem`` found."""
    return InvalidTx("bad-signature", problem, txid=tx.txid)


def check_tx_fields(tx: Transaction, params: ConsensusParams) -> None:
    """The context-free checks of ``check_tx`` that come before the signature."""
    if tx.network != params.network:
        raise InvalidTx(
            "wrong-network",
            f"network is {tx.network!r}, this chain is {params.network!r}",
            txid=tx.txid,
        )
    if tx.size > params.max_tx_bytes:
        raise InvalidTx(
            "tx-too-large",
            f"canonical size {tx.size} bytes exceeds {params.max_tx_bytes}",
            txid=tx.txid,
        )


def check_tx(tx: Transaction, params: ConsensusParams) -> None:
    """Context-free checks of a parsed transaction: network, size, then signature."""
    check_tx_fields(tx, params)
    verify_signature(tx)


# ---------------------------------------------------------------------------- helpers


def digest_of_bytes(data: bytes) -> str:
    """The design's digest form of ``data``: ``"sha256:" + hex``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def is_digest(value: object) -> bool:
    """True for ``"sha256:"`` followed by 64 lowercase hex characters."""
    return isinstance(value, str) and _DIGEST_RE.fullmatch(value) is not None


def is_txid(value: object) -> bool:
    """True for 64 lowercase hex characters (a txid, a signer, a block hash)."""
    return isinstance(value, str) and _TXID_RE.fullmatch(value) is not None
