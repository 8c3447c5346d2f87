"""Transactions (design section 2): bytes, ids, signatures, and every schema rule."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import pickle
from typing import Any

import pytest
import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consensus import keys
from consensus.encoding import MAX_JSON_DEPTH, canonical_bytes
from consensus.errors import InvalidTx
from consensus.params import DEVNET, REGTEST
from consensus.payloads import KINDS, PAYLOAD_MODELS, ROLES, DatasetPayload
from consensus.tx import (
    MAX_TX_BYTES,
    SIGNING_DOMAIN,
    Transaction,
    check_tx,
    digest_of_bytes,
    is_digest,
    is_txid,
    sign_tx,
    signing_message,
    verify_signature,
)
from tests.consensus.conftest import (
    ALICE,
    ALICE_HEX,
    BOB,
    BOB_HEX,
    SEED,
    TIMESTAMP,
    attestation_payload,
    dataset_payload,
    digest,
    inference_payload,
    json_values,
    key_from_seed,
    kinds_and_payloads,
    make_tx,
    model_payload,
    payloads,
    revocation_payload,
)

REF = "ab" * 32
REF2 = "cd" * 32
DIGEST = "sha256:" + "ef" * 32


def valid_payload(kind: str) -> dict[str, Any]:
    return {
        "dataset": dataset_payload(),
        "model": model_payload(inputs=[(REF, "training_data")]),
        "inference": inference_payload(REF),
        "attestation": attestation_payload(REF),
        "revocation": revocation_payload(REF),
    }[kind]


def tx_obj(
    kind: str = "dataset", payload: dict[str, Any] | None = None, /, **top: Any
) -> dict[str, Any]:
    """A valid transaction object (signature not checked by from_json), with overrides."""
    obj = make_tx(ALICE, kind, valid_payload(kind), nonce=7).to_json()
    if payload is not None:
        obj["payload"] = payload
    obj.update(top)
    return obj


def reject(obj: Any, code: str = "bad-tx-schema") -> InvalidTx:
    with pytest.raises(InvalidTx) as info:
        Transaction.from_json(obj)
    assert info.value.code == code, info.value
    return info.value


def with_payload(kind: str, **changes: Any) -> dict[str, Any]:
    payload = valid_payload(kind)
    payload.update(changes)
    return tx_obj(kind, payload)


# --- hand-checked vector ---------------------------------------------------------------

VECTOR_BODY = (
    '{"kind":"dataset","network":"regtest","nonce":1,"payload":{"digest":"sha256:'
    '63af3a9e54e0135458391b2d35b15f872dd05c658f42c629c7a84eb7e9a9ec7a","name":"mnist",'
    '"size":52428800},"signer":"03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8",'
    '"timestamp":1795824000000,"version":1}'
)
VECTOR_TXID = "96f1bb7ccea54eb302266f6fcba84484b07f40c39fd2d723cd2a23f37820fc43"
VECTOR_SIGNATURE = (
    "69df16a627a604fd58fb8a7dd675f82c4eb9088eb6c4a883a61b35d704349692"
    "19e6a79ab5370d55adfc48d57573823bd571423be71a9b256cead09030a2190f"
)


def vector_tx() -> Transaction:
    payload = {"name": "mnist", "digest": digest_of_bytes(b"mnist"), "size": 52_428_800}
    return sign_tx(
        keys.private_key_from_seed(bytes(range(32))),
        network="regtest",
        kind="dataset",
        payload=payload,
        nonce=1,
        timestamp=1_795_824_000_000,
    )


def test_vector_bytes_txid_and_signature() -> None:
    tx = vector_tx()
    assert tx.signer == "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
    assert digest_of_bytes(b"mnist") == "sha256:" + hashlib.sha256(b"mnist").hexdigest()
    assert tx.body_bytes == VECTOR_BODY.encode()
    assert tx.txid == hashlib.sha256(VECTOR_BODY.encode()).hexdigest() == VECTOR_TXID
    assert tx.signature == VECTOR_SIGNATURE  # Ed25519 signatures are deterministic
    leaf = VECTOR_BODY[: VECTOR_BODY.index('"signer"')] + f'"signature":"{VECTOR_SIGNATURE}",'
    leaf += VECTOR_BODY[VECTOR_BODY.index('"signer"') :]
    assert tx.leaf_bytes == leaf.encode()
    assert tx.size == len(leaf)
    verify_signature(tx)
    # independently of consensus.tx: the raw key verifies the domain-tagged body
    raw_key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(tx.signer))
    raw_key.verify(bytes.fromhex(VECTOR_SIGNATURE), b"ailedger/tx/v1\n" + VECTOR_BODY.encode())


def test_signing_message_is_domain_tagged() -> None:
    assert SIGNING_DOMAIN == b"ailedger/tx/v1\n"
    assert signing_message(b"{}") == b"ailedger/tx/v1\n{}"


def test_bytes_agree_with_rfc8785_and_json_forms() -> None:
    tx = make_tx(ALICE, "model", model_payload(metrics={"accuracy": 0.93}, inputs=[(REF, "other")]))
    assert tx.body_bytes == rfc8785.dumps(tx.body)
    assert tx.leaf_bytes == rfc8785.dumps(tx.to_json())
    assert tx.body == {k: v for k, v in tx.to_json().items() if k != "signature"}
    again = Transaction.from_json(json.loads(tx.leaf_bytes))
    assert again == tx
    assert hash(again) == hash(tx)
    assert len({tx, again}) == 1


def test_to_json_is_a_fresh_copy() -> None:
    tx = make_tx(ALICE, "dataset", dataset_payload(metadata={"a": [1]}))
    obj = tx.to_json()
    obj["payload"]["metadata"]["a"].append(2)
    obj["payload"]["name"] = "changed"
    assert tx.payload["metadata"] == {"a": [1]}
    assert tx.to_json()["payload"]["name"] == "corpus"


def test_hand_built_transaction_computes_its_own_bytes() -> None:
    tx = make_tx(ALICE, "inference", inference_payload(REF))
    built = Transaction(**tx.to_json())
    assert built.leaf_bytes == tx.leaf_bytes
    assert built.txid == tx.txid
    verify_signature(built)


def test_a_pickled_transaction_comes_back_whole_without_its_cut_bytes() -> None:
    tx = make_tx(ALICE, "model", model_payload("m", metrics={"acc": 0.5}))
    assert tx.txid  # computes body_bytes, as a signature check does
    assert "body_bytes" in tx.__dict__
    state = tx.__getstate__()
    assert "body_bytes" not in state
    assert state["leaf_bytes"] == tx.leaf_bytes and state["txid"] == tx.txid
    again = pickle.loads(pickle.dumps(tx))
    assert again == tx
    assert "body_bytes" not in again.__dict__
    assert again.body_bytes == tx.body_bytes
    verify_signature(again)


# --- top-level schema --------------------------------------------------------------------


@pytest.mark.parametrize("obj", [None, [], "tx", 1, 1.5, True])
def test_transaction_must_be_an_object(obj: Any) -> None:
    assert "transaction: must be a JSON object" in reject(obj).message


@pytest.mark.parametrize(
    "field", ["version", "network", "kind", "payload", "signer", "nonce", "timestamp", "signature"]
)
def test_missing_top_level_field(field: str) -> None:
    obj = tx_obj()
    del obj[field]
    assert reject(obj).message == f"{field}: required field missing"


@pytest.mark.parametrize("extra", ["txid", "Signature", "extra"])
def test_unknown_top_level_field(extra: str) -> None:
    assert reject(tx_obj(**{extra: 1})).message == f"{extra}: unknown field"


def test_unknown_non_string_top_level_key() -> None:
    obj: dict[Any, Any] = tx_obj()
    obj[5] = 1
    assert reject(obj).message == "5: unknown field"


BAD_TOP_VALUES = [
    ("version", 2),
    ("version", 0),
    ("version", True),
    ("version", 1.0),
    ("version", "1"),
    ("network", ""),
    ("network", "n" * 129),
    ("network", 5),
    ("network", None),
    ("kind", "Dataset"),
    ("kind", "block"),
    ("kind", 1),
    ("payload", []),
    ("payload", "name"),
    ("payload", None),
    ("signer", ALICE_HEX.upper()),
    ("signer", ALICE_HEX[:-1]),
    ("signer", ALICE_HEX + "0"),
    ("signer", ALICE_HEX[:-1] + "g"),
    ("signer", ALICE_HEX + "\n"),
    ("signer", int(ALICE_HEX, 16)),
    ("nonce", 2**53),
    ("nonce", -1),
    ("nonce", True),
    ("nonce", False),
    ("nonce", 1.0),
    ("nonce", "1"),
    ("nonce", float("nan")),
    ("timestamp", 2**53),
    ("timestamp", -1),
    ("timestamp", True),
    ("timestamp", 1_795_824_000_000.0),
    ("timestamp", None),
    ("signature", "AB" * 64),
    ("signature", "ab" * 63 + "a"),
    ("signature", "ab" * 65),
    ("signature", "zz" * 64),
    ("signature", "ab" * 64 + "\n"),
    ("signature", None),
]


@pytest.mark.parametrize(("field", "value"), BAD_TOP_VALUES)
def test_bad_top_level_value(field: str, value: Any) -> None:
    assert reject(tx_obj(**{field: value})).message.startswith(f"{field}: ")


def test_top_level_messages_say_what_is_wrong() -> None:
    assert reject(tx_obj(nonce=1.0)).message == "nonce: must be an integer, not float"
    assert reject(tx_obj(nonce=True)).message == "nonce: must be an integer, not bool"
    assert reject(tx_obj(timestamp=2**53)).message == "timestamp: must be in [0, 2**53)"
    assert "dataset, model, inference, attestation, revocation" in reject(tx_obj(kind="x")).message


@pytest.mark.parametrize("field", ["nonce", "timestamp"])
@pytest.mark.parametrize("value", [0, 1, 2**53 - 1])
def test_counter_bounds_accepted(field: str, value: int) -> None:
    counters: dict[str, Any] = {field: value}
    tx = make_tx(ALICE, "dataset", dataset_payload(), **counters)
    assert getattr(Transaction.from_json(tx.to_json()), field) == value
    verify_signature(tx)


def test_network_of_128_characters_is_accepted() -> None:
    tx = make_tx(ALICE, "dataset", dataset_payload(), network="n" * 128)
    assert tx.network == "n" * 128


# --- payload schema ------------------------------------------------------------------------

REQUIRED = {
    "dataset": ["name", "digest"],
    "model": ["name", "digest"],
    "inference": ["model", "input_digest", "output_digest"],
    "attestation": ["subject", "type", "result"],
    "revocation": ["subject"],
}


@pytest.mark.parametrize(("kind", "field"), [(k, f) for k, fs in REQUIRED.items() for f in fs])
def test_missing_required_payload_field(kind: str, field: str) -> None:
    obj = tx_obj(kind)
    del obj["payload"][field]
    message = reject(obj).message
    assert message == f"payload.{field}: required field missing ({kind} payload)"


@pytest.mark.parametrize("kind", KINDS)
def test_minimal_payloads_are_accepted(kind: str) -> None:
    payload = {field: valid_payload(kind)[field] for field in REQUIRED[kind]}
    tx = make_tx(ALICE, kind, payload)
    assert tx.payload == payload


@pytest.mark.parametrize("kind", KINDS)
def test_unknown_payload_field(kind: str) -> None:
    message = reject(with_payload(kind, comment="hi")).message
    assert message == f"payload.comment: unknown field ({kind} payload)"


def test_unknown_field_in_a_model_input() -> None:
    obj = tx_obj("model")
    obj["payload"]["inputs"][0]["weight"] = 1
    assert reject(obj).message.startswith("payload.inputs[0].weight: unknown field")


def test_missing_field_in_a_model_input() -> None:
    obj = tx_obj("model")
    del obj["payload"]["inputs"][0]["role"]
    assert reject(obj).message.startswith("payload.inputs[0].role: required field missing")


@pytest.mark.parametrize(
    ("kind", "field"),
    [
        ("dataset", "uri"),
        ("dataset", "size"),
        ("dataset", "metadata"),
        ("dataset", "name"),
        ("model", "inputs"),
        ("model", "code_digest"),
        ("revocation", "reason"),
    ],
)
def test_null_is_not_a_value(kind: str, field: str) -> None:
    message = reject(with_payload(kind, **{field: None})).message
    assert message.startswith(f"payload.{field}: must not be null (omit the field instead)")


BAD_PAYLOAD_VALUES: list[tuple[str, str, Any]] = [
    ("dataset", "name", 5),
    ("dataset", "name", ""),
    ("dataset", "name", "n" * 257),
    ("dataset", "name", ["n"]),
    ("dataset", "size", "1"),
    ("dataset", "size", True),
    ("dataset", "size", 1.0),
    ("dataset", "size", -1),
    ("dataset", "size", 2**53),
    ("dataset", "uri", ""),
    ("dataset", "uri", "u" * 2049),
    ("dataset", "license", ""),
    ("dataset", "license", "l" * 129),
    ("dataset", "derived_from", REF),
    ("dataset", "derived_from", [REF] * 65),
    ("dataset", "derived_from", [REF.upper()]),
    ("dataset", "derived_from", [5]),
    ("dataset", "metadata", []),
    ("dataset", "metadata", "x"),
    ("dataset", "metadata", {5: 1}),
    ("model", "version", ""),
    ("model", "version", "v" * 129),
    ("model", "framework", 3),
    ("model", "inputs", {"ref": REF, "role": "other"}),
    ("model", "inputs", [{"ref": REF, "role": "weights"}]),
    ("model", "inputs", [{"ref": REF, "role": "Training_data"}]),
    ("model", "inputs", [{"ref": REF[:-2], "role": "other"}]),
    ("model", "inputs", [[REF, "other"]]),
    ("model", "inputs", [{"ref": REF, "role": "other"}] * 65),
    ("model", "hyperparameters", [1]),
    ("model", "code_digest", REF),
    ("model", "metrics", 0.93),
    ("inference", "model", "sha256:" + REF),
    ("inference", "model", REF + "\n"),
    ("inference", "input_digest", "sha256:" + REF.upper()),
    ("inference", "output_digest", "sha1:" + REF[:40]),
    ("inference", "output_digest", DIGEST + "\n"),
    ("inference", "output_digest", DIGEST[:-1]),
    ("attestation", "subject", REF[:-1]),
    ("attestation", "type", ""),
    ("attestation", "type", "t" * 129),
    ("attestation", "result", "pass"),
    ("attestation", "result", [True]),
    ("revocation", "subject", 0),
    ("revocation", "reason", ""),
    ("revocation", "reason", "r" * 513),
]


@pytest.mark.parametrize(("kind", "field", "value"), BAD_PAYLOAD_VALUES)
def test_bad_payload_value(kind: str, field: str, value: Any) -> None:
    assert reject(with_payload(kind, **{field: value})).message.startswith(f"payload.{field}")


def test_payload_messages_name_the_problem() -> None:
    message = reject(with_payload("dataset", digest="sha256:00")).message
    assert message == (
        'payload.digest: must be "sha256:" followed by 64 lowercase hex characters'
        " (dataset payload)"
    )
    message = reject(with_payload("inference", model="x")).message
    assert message.startswith("payload.model: must be a txid: 64 lowercase hex characters")
    message = reject(with_payload("dataset", name="n" * 257)).message
    assert message.startswith("payload.name: string should have at most 256 characters")
    obj = with_payload("model", inputs=[{"ref": REF, "role": "weights"}])
    assert "training_data" in reject(obj).message


@pytest.mark.parametrize(
    ("kind", "field", "value"),
    [
        ("dataset", "name", "n" * 256),
        ("dataset", "uri", "u" * 2048),
        ("dataset", "license", "l" * 128),
        ("dataset", "size", 0),
        ("dataset", "size", 2**53 - 1),
        ("dataset", "derived_from", []),
        ("dataset", "derived_from", [REF] * 64),
        ("dataset", "metadata", {}),
        ("model", "inputs", [{"ref": REF, "role": role} for role in ROLES]),
        ("model", "inputs", [{"ref": REF, "role": "other"}] * 64),
        ("model", "code_digest", DIGEST),
        ("model", "version", "v" * 128),
        ("revocation", "reason", "r" * 512),
        ("attestation", "result", {}),
    ],
)
def test_bounds_accepted(kind: str, field: str, value: Any) -> None:
    tx = make_tx(ALICE, kind, {**valid_payload(kind), field: value})
    assert tx.payload[field] == value


def test_payload_models_are_strict_pydantic_models() -> None:
    assert set(PAYLOAD_MODELS) == set(KINDS)
    model = DatasetPayload.model_validate({"name": "a", "digest": DIGEST, "size": 3})
    assert model.size == 3
    assert model.uri is None


# --- numbers, canonical JSON, size ---------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [float("nan"), float("inf"), -float("inf"), 2**53, -(2**53), 10**30, {"deep": [float("nan")]}],
)
def test_non_ijson_numbers_in_free_objects_are_refused(value: Any) -> None:
    reject(with_payload("dataset", metadata={"x": value}), "bad-json")
    reject(with_payload("model", metrics={"x": [value]}), "bad-json")
    reject(with_payload("attestation", result={"x": value}), "bad-json")


@pytest.mark.parametrize(
    "value",
    [
        0.93,
        1.0,
        -0.0,
        1e-7,
        1e21,
        1e300,
        5e-324,
        2**53 - 1,
        -(2**53 - 1),
        123456789.125,
        True,
        None,
    ],
)
def test_i_json_numbers_are_accepted_andcanonical_bytes(value: Any) -> None:
    tx = make_tx(ALICE, "model", model_payload(metrics={"m": value, "l": [value]}))
    assert tx.leaf_bytes == rfc8785.dumps(tx.to_json())
    assert Transaction.from_json(tx.to_json()).txid == tx.txid
    verify_signature(tx)


def test_metrics_keep_their_float_value() -> None:
    tx = make_tx(ALICE, "model", model_payload(metrics={"accuracy": 0.93}))
    assert b'"metrics":{"accuracy":0.93}' in tx.leaf_bytes
    assert tx.to_json()["payload"]["metrics"]["accuracy"] == 0.93


def test_non_ascii_keys_sort_by_utf16() -> None:
    # U+FB01 sorts after U+1F600 in UTF-16 (0xFB01 > 0xD83D) but before it by code point
    metadata = {"\U0001f600": 1, "\ufb01": 2, "é": 3, "a": 4}
    tx = make_tx(ALICE, "dataset", dataset_payload(metadata=metadata))
    assert tx.leaf_bytes == rfc8785.dumps(tx.to_json())
    assert tx.leaf_bytes.index("\U0001f600".encode()) < tx.leaf_bytes.index("\ufb01".encode())


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (dataset_payload(name="\ud800"), "bad-tx-schema"),
        (dataset_payload(metadata={"x": "\udfff"}), "bad-json"),
        (dataset_payload(metadata={"\ud800": 1}), "bad-json"),
    ],
)
def test_lone_surrogates_are_refused(payload: dict[str, Any], code: str) -> None:
    reject(tx_obj("dataset", payload), code)


@pytest.mark.parametrize("value", [{1, 2}, b"bytes", (1, 2), object(), json])
def test_non_json_values_in_free_objects_are_refused(value: Any) -> None:
    obj = tx_obj("dataset")
    obj["payload"]["metadata"] = {"x": value}
    if isinstance(value, tuple):  # RFC 8785 writes a tuple as an array
        assert Transaction.from_json(obj).to_json()["payload"]["metadata"] == {"x": [1, 2]}
    else:
        reject(obj, "bad-json")


def nested(depth: int) -> Any:
    value: Any = []
    for i in range(depth - 1):
        value = [value] if i % 2 else {"k": value}
    return value


def test_nesting_depth_is_bounded() -> None:
    # the transaction is depth 1, the payload 2, metadata 3, then its containers
    limit = MAX_JSON_DEPTH - 3
    tx = make_tx(ALICE, "dataset", dataset_payload(metadata={"x": nested(limit)}))
    assert tx.leaf_bytes == rfc8785.dumps(tx.to_json())
    message = reject(with_payload("dataset", metadata={"x": nested(limit + 1)}), "bad-json")
    assert "nested deeper than 32" in message.message
    # far past the interpreter's recursion limit: still a clean rejection
    reject(with_payload("dataset", metadata={"a": 1e30, "x": nested(5000)}), "bad-json")
    reject(with_payload("dataset", metadata={"\U0001f600": nested(5000)}), "bad-json")


def test_oversize_transaction() -> None:
    base = make_tx(ALICE, "dataset", dataset_payload(metadata={"pad": ""}), nonce=1)
    fill = MAX_TX_BYTES - base.size
    exact = make_tx(ALICE, "dataset", dataset_payload(metadata={"pad": "p" * fill}), nonce=1)
    assert exact.size == MAX_TX_BYTES
    check_tx(exact, REGTEST)
    too_big = dataset_payload(metadata={"pad": "p" * (fill + 1)})
    with pytest.raises(InvalidTx) as info:
        make_tx(ALICE, "dataset", too_big, nonce=1)
    assert info.value.code == "tx-too-large"
    obj = exact.to_json()
    obj["payload"]["metadata"]["pad"] += "p"
    error = reject(obj, "tx-too-large")
    assert error.txid == Transaction(**obj).txid
    assert "8193" in error.message


# --- context-free checks and signatures ----------------------------------------------------


def test_check_tx_accepts_a_good_transaction() -> None:
    check_tx(make_tx(ALICE, "dataset", dataset_payload()), REGTEST)
    check_tx(make_tx(ALICE, "dataset", dataset_payload(), network="devnet"), DEVNET)


def test_wrong_network() -> None:
    tx = make_tx(ALICE, "dataset", dataset_payload(), network="devnet")
    with pytest.raises(InvalidTx) as info:
        check_tx(tx, REGTEST)
    assert (info.value.code, info.value.txid) == ("wrong-network", tx.txid)


def test_params_size_limit() -> None:
    tx = make_tx(ALICE, "dataset", dataset_payload())
    with pytest.raises(InvalidTx) as info:
        check_tx(tx, dataclasses.replace(REGTEST, max_tx_bytes=tx.size - 1))
    assert (info.value.code, info.value.txid) == ("tx-too-large", tx.txid)
    check_tx(tx, dataclasses.replace(REGTEST, max_tx_bytes=tx.size))


def bad_signature(tx: Transaction) -> InvalidTx:
    with pytest.raises(InvalidTx) as info:
        verify_signature(tx)
    assert (info.value.code, info.value.txid) == ("bad-signature", tx.txid)
    with pytest.raises(InvalidTx) as again:
        check_tx(tx, dataclasses.replace(REGTEST, network=tx.network))
    assert again.value.code == "bad-signature"
    return info.value


@pytest.mark.parametrize("bit", [0, 7, 255, 256, 511])
def test_flipped_signature_bit(bit: int) -> None:
    tx = make_tx(ALICE, "dataset", dataset_payload())
    raw = bytearray(bytes.fromhex(tx.signature))
    raw[bit // 8] ^= 1 << (bit % 8)
    bad_signature(Transaction.from_json({**tx.to_json(), "signature": raw.hex()}))


@pytest.mark.parametrize(
    "change",
    [
        {"network": "devnet"},
        {"nonce": 8},
        {"timestamp": TIMESTAMP + 1},
        {"signer": BOB_HEX},
        {"kind": "revocation", "payload": {"subject": REF}},
        {"payload": dataset_payload(name="other")},
        {"payload": dataset_payload(size=1)},
    ],
)
def test_changed_body_field_breaks_the_signature(change: dict[str, Any]) -> None:
    tx = make_tx(ALICE, "dataset", dataset_payload(), nonce=7)
    bad_signature(Transaction.from_json({**tx.to_json(), **change}))


def test_signature_of_another_key() -> None:
    tx = make_tx(BOB, "dataset", dataset_payload(), nonce=7)
    forged = Transaction.from_json({**tx.to_json(), "signer": ALICE_HEX})
    bad_signature(forged)


SMALL_ORDER_SIGNERS = [
    "00" * 32,
    "01" + "00" * 31,
    "00" * 31 + "80",
    "ec" + "ff" * 30 + "7f",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
]


@pytest.mark.parametrize("signer", SMALL_ORDER_SIGNERS)
def test_small_order_signer_is_refused(signer: str) -> None:
    tx = Transaction.from_json(tx_obj(signer=signer, signature="00" * 64))
    assert "small-order" in bad_signature(tx).message


def test_small_order_signer_would_verify_without_the_check() -> None:
    # why the check exists: with the identity point as key and as R, and S = 0, the
    # signature equation holds for every message, so anyone could "sign" for this key
    identity = "01" + "00" * 31
    tx = Transaction.from_json(tx_obj(signer=identity, signature=identity + "00" * 32))
    raw_key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(identity))
    raw_key.verify(bytes.fromhex(tx.signature), signing_message(tx.body_bytes))
    bad_signature(tx)


@pytest.mark.parametrize(
    ("signer", "problem"),
    [
        ("ed" + "ff" * 30 + "7f", "canonical"),  # y = p
        ("ff" * 32, "canonical"),
        ("02" + "00" * 31, "does not verify"),  # y = 2 is not on the curve
    ],
)
def test_invalid_signer_point(signer: str, problem: str) -> None:
    tx = Transaction.from_json(tx_obj(signer=signer))
    assert problem in bad_signature(tx).message


def test_off_curve_signer_is_a_bad_signer() -> None:
    with pytest.raises(InvalidTx, match="not a point on the curve") as info:
        keys.public_key_from_hex("02" + "00" * 31)
    assert info.value.code == "bad-signer"
    # left to the verifier when asked: OpenSSL refuses the point during verification
    lazy = keys.public_key_from_hex("02" + "00" * 31, check_on_curve=False)
    with pytest.raises(InvalidSignature):
        lazy.verify(bytes(64), b"message")


def test_hand_built_transaction_with_a_malformed_signature() -> None:
    tx = make_tx(ALICE, "dataset", dataset_payload())
    for signature in ("zz" * 64, "ab"):
        bad_signature(dataclasses.replace(tx, signature=signature))


def test_sign_tx_validates_before_signing() -> None:
    with pytest.raises(InvalidTx) as info:
        sign_tx(
            ALICE, network="regtest", kind="dataset", payload={"name": "x"}, nonce=1, timestamp=1
        )
    assert info.value.message.startswith("payload.digest: required field missing")
    with pytest.raises(InvalidTx):
        sign_tx(
            ALICE,
            network="regtest",
            kind="dataset",
            payload=dataset_payload(),
            nonce=-1,
            timestamp=1,
        )


# --- refs and helpers ----------------------------------------------------------------------


def test_refs_in_payload_order() -> None:
    assert make_tx(ALICE, "dataset", dataset_payload()).refs() == []
    dataset = make_tx(ALICE, "dataset", dataset_payload(derived_from=[REF, REF2]))
    assert dataset.refs() == [(REF, "derived_from"), (REF2, "derived_from")]
    inputs = [(REF2, "base_model"), (REF, "training_data"), (REF, "test_data")]
    assert make_tx(ALICE, "model", model_payload(inputs=inputs)).refs() == inputs
    assert make_tx(ALICE, "model", model_payload()).refs() == []
    assert make_tx(ALICE, "inference", inference_payload(REF)).refs() == [(REF, "model")]
    assert make_tx(ALICE, "attestation", attestation_payload(REF)).refs() == [(REF, "subject")]
    assert make_tx(ALICE, "revocation", revocation_payload(REF)).refs() == [(REF, "subject")]


def test_digest_and_txid_predicates() -> None:
    assert is_digest(DIGEST) and is_digest(digest("x"))
    assert not is_digest(DIGEST + "\n") and not is_digest(DIGEST.upper()) and not is_digest(5)
    assert not is_digest(REF)
    assert is_txid(REF) and not is_txid(REF + "\n") and not is_txid(REF[:-1])
    assert not is_txid(REF.upper()) and not is_txid(None)


# --- keys ------------------------------------------------------------------------------------


def test_public_key_hex_of_private_and_public_keys() -> None:
    assert keys.public_key_hex(ALICE) == keys.public_key_hex(ALICE.public_key()) == ALICE_HEX
    parsed = keys.public_key_from_hex(ALICE_HEX)
    assert keys.public_key_hex(parsed) == ALICE_HEX


@pytest.mark.parametrize(
    "text",
    [ALICE_HEX.upper(), ALICE_HEX[:-2], ALICE_HEX + "00", 5, None, "g" * 64, *SMALL_ORDER_SIGNERS],
)
def test_public_key_from_hex_refuses(text: Any) -> None:
    with pytest.raises(InvalidTx) as info:
        keys.public_key_from_hex(text)
    assert info.value.code == "bad-signer"


def test_pem_round_trip() -> None:
    pem = keys.private_key_to_pem(ALICE)
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert keys.public_key_hex(keys.private_key_from_pem(pem)) == ALICE_HEX


def test_pem_that_is_not_an_ed25519_key() -> None:
    ec_key = ec.derive_private_key(12345, ec.SECP256R1())
    ec_pem = ec_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(ValueError, match="not an Ed25519 private key"):
        keys.private_key_from_pem(ec_pem)
    with pytest.raises(ValueError, match="not an unencrypted PEM private key"):
        keys.private_key_from_pem(b"not a key")
    encrypted = ALICE.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    with pytest.raises(ValueError, match="not an unencrypted PEM private key"):
        keys.private_key_from_pem(encrypted)


def test_private_key_from_seed() -> None:
    assert keys.public_key_hex(keys.private_key_from_seed(SEED)) == ALICE_HEX
    assert keys.public_key_hex(key_from_seed(1)) != keys.public_key_hex(key_from_seed(2))
    for seed in (b"", bytes(31), bytes(33), "0" * 32):
        with pytest.raises(ValueError, match="32 bytes"):
            keys.private_key_from_seed(seed)  # type: ignore[arg-type]


# A slow, independent Edwards-curve model to check the small-order list against.
P = 2**255 - 19
D = (-121665 * pow(121666, P - 2, P)) % P


def _point(y: int, x_odd: int) -> tuple[int, int] | None:
    xx = (y * y - 1) * pow(D * y * y + 1, P - 2, P) % P
    x = pow(xx, (P + 3) // 8, P)
    if (x * x - xx) % P:
        x = x * pow(2, (P - 1) // 4, P) % P
    if (x * x - xx) % P or (x == 0 and x_odd):
        return None
    return (P - x if x & 1 != x_odd else x), y


def _double(p: tuple[int, int]) -> tuple[int, int]:
    (x, y), t = p, D * p[0] * p[0] * p[1] * p[1] % P
    return 2 * x * y * pow(1 + t, P - 2, P) % P, (y * y + x * x) * pow(1 - t, P - 2, P) % P


def test_small_order_list_is_exactly_the_torsion_points() -> None:
    found = set()
    for y in keys._SMALL_ORDER_Y:
        for x_odd in (0, 1):
            point = _point(y, x_odd)
            if point is not None:
                assert _double(_double(_double(point))) == (0, 1)
                found.add(point)
    assert len(found) == 8


@settings(max_examples=50)
@given(st.binary(min_size=32, max_size=32))
def test_real_keys_pass_and_the_curve_check_agrees(data: bytes) -> None:
    assert keys._point_problem(key_from_seed(data).public_key().public_bytes_raw()) is None
    y = int.from_bytes(data, "little") & ((1 << 255) - 1)
    on_curve = y < P and _point(y, 0) is not None  # either sign of x, as x != 0 here
    problem = keys._point_problem(data)
    assert (problem is None or "small-order" in problem) == on_curve


# --- properties ---------------------------------------------------------------------------


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(kinds_and_payloads, st.integers(0, 2**53 - 1), st.integers(0, 2**53 - 1))
def test_round_trip(kind_payload: tuple[str, dict[str, Any]], nonce: int, timestamp: int) -> None:
    kind, payload = kind_payload
    tx = make_tx(ALICE, kind, payload, nonce=nonce, timestamp=timestamp)
    wire = json.loads(json.dumps(tx.to_json()))
    again = Transaction.from_json(wire)
    assert (again.txid, again.leaf_bytes) == (tx.txid, tx.leaf_bytes)
    assert tx.leaf_bytes == rfc8785.dumps(tx.to_json())
    assert tx.body_bytes == rfc8785.dumps(tx.body)
    assert tx.txid == hashlib.sha256(tx.body_bytes).hexdigest()
    verify_signature(again)


@st.composite
def mutations(draw: st.DrawFn) -> tuple[Transaction, dict[str, Any]]:
    kind, payload = draw(kinds_and_payloads)
    tx = make_tx(ALICE, kind, payload, nonce=draw(st.integers(0, 2**53 - 1)))
    field = draw(st.sampled_from(["network", "kind", "payload", "signer", "nonce", "timestamp"]))
    obj = tx.to_json()
    if field == "network":
        obj["network"] = draw(st.text(min_size=1, max_size=10).filter(lambda n: n != tx.network))
    elif field in ("nonce", "timestamp"):
        obj[field] = draw(st.integers(0, 2**53 - 1).filter(lambda n: n != obj[field]))
    elif field == "signer":
        obj["signer"] = BOB_HEX
    else:
        new_kind, new_payload = draw(kinds_and_payloads)
        if field == "payload":
            new_kind = kind
            new_payload = draw(payloads(kind))
        obj["kind"], obj["payload"] = new_kind, new_payload
    return tx, obj


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(mutations())
def test_any_body_change_breaks_the_signature(case: tuple[Transaction, dict[str, Any]]) -> None:
    tx, obj = case
    changed = Transaction.from_json(obj)
    if changed.body_bytes == tx.body_bytes:  # an equal payload was drawn
        verify_signature(changed)
    else:
        bad_signature(changed)


FULL_KEYS = st.text(max_size=6) | st.sampled_from(["\U0001f600", "\ufb01", "é", "a", "\ud800"])
ANY_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**60), 2**60)
    | st.floats()
    | st.text(max_size=8)
    | st.sampled_from(["\ud800", 'a\x7f\x1f"\\\u2028']),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(FULL_KEYS, inner, max_size=4),
    max_leaves=16,
)


def _rfc8785_round_trip(value: Any) -> bytes | None:
    """RFC 8785 bytes of ``value`` if both it and its parsed-back form canonicalise."""
    try:
        text = rfc8785.dumps(value)
        rfc8785.dumps(json.loads(text))
    except (rfc8785.CanonicalizationError, ValueError):
        return None
    return text


@settings(max_examples=500)
@given(ANY_JSON)
def test_fast_canonical_json_is_rfc8785(value: Any) -> None:
    """Accepted exactly when RFC 8785 accepts the value and its JSON round trip; same bytes."""
    expected = _rfc8785_round_trip(value)
    if expected is None:
        with pytest.raises(InvalidTx) as info:
            canonical_bytes(value)
        assert info.value.code == "bad-json"
    else:
        assert canonical_bytes(value) == expected


@pytest.mark.parametrize("value", [2.0**53, -(2.0**53), 1e20, -9.999999999999999e20])
def test_integral_floats_beyond_the_safe_range_are_refused(value: float) -> None:
    # RFC 8785 writes them as integer digits, which parse back as out-of-range integers
    assert b"e" not in rfc8785.dumps(value)
    reject(with_payload("dataset", metadata={"x": value}), "bad-json")


@given(json_values)
def test_valid_json_values_canonicalise(value: Any) -> None:
    assert canonical_bytes(value) == rfc8785.dumps(value)


def test_deepcopy_of_a_transaction_is_equal() -> None:
    tx = make_tx(ALICE, "attestation", attestation_payload(REF, metadata={"k": [1, 2.5]}))
    assert copy.deepcopy(tx) == tx
