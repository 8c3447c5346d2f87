"""The payload of each kind of record (design section 2, normative).

Each kind's payload is a JSON object whose fields the pydantic models below state, with
exact keys and strict JSON types: a bool is not an int, nor is a float; ``null`` is no
value for a named field (omit it instead); strings are non-empty and bounded; lists hold
at most ``MAX_LIST_LEN`` entries; digests are ``sha256:<64 hex>`` and references are
txids (64 lowercase hex). ``check_payload`` applies them, rejecting with
``bad-tx-schema`` and naming the first field at fault.

The free-form objects (``FREE_FIELDS``: metadata, hyperparameters, metrics, an
attestation's result) may hold any JSON; only they can hold floats, big integers, deep
nesting or non-ASCII keys, which the canonical encoding then checks (``consensus.tx``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from consensus.encoding import MAX_SAFE_INTEGER
from consensus.errors import InvalidTx

__all__ = [
    "DIGEST_PATTERN",
    "FREE_FIELDS",
    "KINDS",
    "MAX_LIST_LEN",
    "PAYLOAD_MODELS",
    "ROLES",
    "TXID_PATTERN",
    "AttestationPayload",
    "DatasetPayload",
    "InferencePayload",
    "ModelInput",
    "ModelPayload",
    "RevocationPayload",
    "check_payload",
]

KINDS = ("dataset", "model", "inference", "attestation", "revocation")
ROLES = ("training_data", "validation_data", "test_data", "base_model", "other")
MAX_LIST_LEN = 64
DIGEST_PATTERN = r"^sha256:[0-9a-f]{64}$"
TXID_PATTERN = r"^[0-9a-f]{64}$"

Name = Annotated[str, Field(min_length=1, max_length=256)]
Uri = Annotated[str, Field(min_length=1, max_length=2048)]
Short = Annotated[str, Field(min_length=1, max_length=128)]
Reason = Annotated[str, Field(min_length=1, max_length=512)]
Digest = Annotated[str, Field(pattern=DIGEST_PATTERN)]
Ref = Annotated[str, Field(pattern=TXID_PATTERN)]
Role = Literal["training_data", "validation_data", "test_data", "base_model", "other"]
JsonObject = dict[str, Any]


class _Strict(BaseModel):
    """Exact keys, strict JSON types, and no ``null`` for a field: omit it instead."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise PydanticCustomError("not_null", "must not be null (omit the field instead)")
        return value


class DatasetPayload(_Strict):
    name: Name
    digest: Digest
    size: Annotated[int, Field(ge=0, le=MAX_SAFE_INTEGER)] | None = None
    uri: Uri | None = None
    license: Short | None = None
    derived_from: Annotated[list[Ref], Field(max_length=MAX_LIST_LEN)] | None = None
    metadata: JsonObject | None = None


class ModelInput(_Strict):
    ref: Ref
    role: Role


class ModelPayload(_Strict):
    name: Name
    digest: Digest
    version: Short | None = None
    framework: Short | None = None
    inputs: Annotated[list[ModelInput], Field(max_length=MAX_LIST_LEN)] | None = None
    hyperparameters: JsonObject | None = None
    code_digest: Digest | None = None
    metrics: JsonObject | None = None
    metadata: JsonObject | None = None


class InferencePayload(_Strict):
    model: Ref
    input_digest: Digest
    output_digest: Digest
    metadata: JsonObject | None = None


class AttestationPayload(_Strict):
    subject: Ref
    type: Short
    result: JsonObject
    metadata: JsonObject | None = None


class RevocationPayload(_Strict):
    subject: Ref
    reason: Reason | None = None


PAYLOAD_MODELS: dict[str, type[_Strict]] = {
    "dataset": DatasetPayload,
    "model": ModelPayload,
    "inference": InferencePayload,
    "attestation": AttestationPayload,
    "revocation": RevocationPayload,
}

FREE_FIELDS = {
    "dataset": ("metadata",),
    "model": ("hyperparameters", "metrics", "metadata"),
    "inference": ("metadata",),
    "attestation": ("result", "metadata"),
    "revocation": (),
}
"""Each kind's free-form objects: any JSON, checked only by the canonical encoding."""

_PATTERN_WORDS = {
    DIGEST_PATTERN: 'must be "sha256:" followed by 64 lowercase hex characters',
    TXID_PATTERN: "must be a txid: 64 lowercase hex characters",
}


def check_payload(kind: str, payload: Any) -> None:
    """``payload`` is a valid ``kind`` payload (a kind of ``KINDS``), else ``InvalidTx``
    with ``bad-tx-schema``."""
    try:
        PAYLOAD_MODELS[kind].__pydantic_validator__.validate_python(payload)
    except ValidationError as exc:
        raise _payload_error(kind, exc) from None


def _payload_error(kind: str, exc: ValidationError) -> InvalidTx:
    """``bad-tx-schema`` naming the field of the first pydantic error and what is wrong."""
    err = exc.errors(include_url=False)[0]
    path = "payload" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"])
    if err["type"] == "missing":
        what = "required field missing"
    elif err["type"] == "extra_forbidden":
        what = "unknown field"
    elif err["type"] == "string_pattern_mismatch":
        what = _PATTERN_WORDS[err["ctx"]["pattern"]]
    else:
        what = err["msg"][:1].lower() + err["msg"][1:]
    return InvalidTx("bad-tx-schema", f"{path}: {what} ({kind} payload)")
