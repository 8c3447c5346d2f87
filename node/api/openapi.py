"""The OpenAPI description made exact, so a client generated from /openapi.json is right.

- Every route documents each error status it can answer, with the one error body
  (``ErrorOut``): 404 where a path names something, 400/413/422 where a body is read,
  422 where a query is parsed, 401/403 on the admin API, 429 on rate-limited writes,
  and 503 everywhere (storage failed, the node is stopping, the mempool is full, p2p
  is switched off). A route declares more in its own ``responses=``.
- Request bodies the node parses itself (``json_body``) are described as strictly as it
  checks them: a transaction is one of five shapes, one per kind, each with its payload's
  exact fields (``consensus.payloads``), no ``null`` for an optional field (omit it), and
  free-form objects holding only I-JSON values; its ``network`` is this node's.
- Every ``$ref`` resolves inside the document (pydantic's ``#/$defs`` are inlined).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

from consensus.payloads import KINDS, PAYLOAD_MODELS
from node.api.schemas import TransactionIn

__all__ = ["ErrorDetail", "ErrorOut", "allowed_methods", "document"]

_SAFE = 2**53 - 1
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_DESCRIPTIONS = {
    400: "The request breaks a rule (see the error code), or the client left mid-body",
    401: "Missing or wrong credentials: the admin token, or a peer's session",
    403: "Refused: no admin token configured, or a discouraged peer",
    404: "Not found",
    409: "Conflicts with what is already recorded",
    413: "Too large",
    422: "Malformed: not the JSON or the parameters this route takes",
    429: "Too many write requests; see Retry-After",
    500: "Unexpected error; see the node log",
    503: "Unavailable: storage failed, stopping, mempool full, or p2p switched off",
}
_EXTRA_STATUSES: dict[tuple[str, str], frozenset[int]] = {
    ("DELETE", "/v1/admin/peers"): frozenset({404}),
    ("POST", "/v1/transactions"): frozenset({409}),
    ("GET", "/p2p/blocks/{block_hash}"): frozenset({404}),
}
"""Statuses a route answers beyond what its shape implies."""


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$")
    message: str
    txid: str | None = Field(None, description="the transaction meant, when there is one")


class ErrorOut(BaseModel):
    """Every error the API answers: ``{"error": {"code", "message"}}``."""

    model_config = ConfigDict(extra="forbid")
    error: ErrorDetail


def _statuses(method: str, path: str, operation: dict[str, Any]) -> set[int]:
    statuses = {500, 503}
    where = {p.get("in") for p in operation.get("parameters", [])}
    if "path" in where:
        statuses.add(404)
    if where & {"query", "header"}:
        statuses.add(422)
    if method.upper() in _WRITES:
        statuses |= {400, 413, 422}
        if path.startswith("/v1/") and not path.startswith("/v1/admin"):
            statuses.add(429)
    if path.startswith("/v1/admin"):
        statuses |= {401, 403}
    if path.startswith("/p2p"):
        statuses |= {401, 403, 422}
    return statuses | _EXTRA_STATUSES.get((method.upper(), path), frozenset())


_ERROR_REF = {"$ref": "#/components/schemas/ErrorOut"}


def _document_statuses(schema: dict[str, Any]) -> None:
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            statuses = _statuses(method, path, operation)
            if "422" in responses:  # FastAPI's validation error: answered as ErrorOut here
                statuses.add(422)
            for status in sorted(statuses):
                responses[str(status)] = {
                    "description": _DESCRIPTIONS[status],
                    "content": {"application/json": {"schema": _ERROR_REF}},
                }


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """The methods the description lists for a request path (the ``Allow`` of a 405)."""
    paths = app.openapi()["paths"]
    if path in paths:  # a literal path wins over templates (/v1/transactions/batch)
        paths = {path: paths[path]}
    methods: set[str] = set()
    for template, operations in paths.items():
        pattern = re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, path):
            methods |= {m.upper() for m in operations}
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


# --- request bodies ---------------------------------------------------------------------

JSON_VALUE = "JsonValue"
_JSON_REF = {"$ref": f"#/components/schemas/{JSON_VALUE}"}
_JSON_VALUE_SCHEMA: dict[str, Any] = {
    "description": "Any I-JSON value: integers within +-(2**53 - 1), no NaN or Infinity",
    "anyOf": [
        {"type": "string"},
        {"type": "integer", "minimum": -_SAFE, "maximum": _SAFE},
        {"type": "number", "not": {"type": "integer"}},
        {"type": "boolean"},
        {"type": "null"},
        {"type": "array", "items": _JSON_REF},
        {"type": "object", "additionalProperties": _JSON_REF},
    ],
}


def _resolve(schema: Any, defs: dict[str, Any]) -> Any:
    """``schema`` with pydantic's ``#/$defs/X`` references replaced by X (and no titles)."""
    if isinstance(schema, list):
        return [_resolve(item, defs) for item in schema]
    if not isinstance(schema, dict):
        return schema
    ref = schema.get("$ref", "")
    if ref.startswith("#/$defs/"):
        return _resolve(defs[ref.removeprefix("#/$defs/")], defs)
    return {k: _resolve(v, defs) for k, v in schema.items() if k not in ("$defs", "title")}


def _strict(schema: Any) -> Any:
    """A payload schema as the node checks it (``consensus.payloads._Strict``): free-form
    objects hold I-JSON values, and an optional field is omitted, never ``null``."""
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _strict(v) for k, v in schema.items()}
    options = out.get("anyOf")
    if isinstance(options, list) and {"type": "null"} in options:
        rest = [o for o in options if o != {"type": "null"}]
        out.pop("anyOf")
        out.pop("default", None)
        out.update(rest[0] if len(rest) == 1 else {"anyOf": rest})
    if out.get("type") == "object" and out.get("additionalProperties") is True:
        out["additionalProperties"] = _JSON_REF
    return out


def _model_schema(model: type[BaseModel]) -> dict[str, Any]:
    raw = model.model_json_schema()
    schema: dict[str, Any] = _resolve(raw, raw.get("$defs", {}))
    return schema


def transaction_schema(network: str) -> dict[str, Any]:
    """A signed record of this network, one shape per kind (design §2)."""
    base = _model_schema(TransactionIn)
    shapes = []
    for kind in KINDS:
        shape = copy.deepcopy(base)
        shape["properties"]["kind"] = {"type": "string", "enum": [kind]}
        shape["properties"]["network"] = {"type": "string", "enum": [network]}
        shape["properties"]["payload"] = _strict(_model_schema(PAYLOAD_MODELS[kind]))
        shapes.append(shape)
    return {"oneOf": shapes}


def _json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _hex(chars: int) -> dict[str, Any]:
    return {"type": "string", "pattern": f"^[0-9a-f]{{{chars}}}$"}


_ANY: dict[str, Any] = {"description": "any JSON value (checked by the handler)"}
_LOCATOR = {"type": "array", "maxItems": 200, "items": {"type": "string"}}


def _uint(maximum: int) -> dict[str, Any]:
    return {"type": "integer", "minimum": 0, "maximum": maximum}


def block_schema(tx: dict[str, Any]) -> dict[str, Any]:
    """A block in its JSON form (design §3), as ``Block.from_json`` parses it. (``hash``
    and ``header_hex`` may be added, and must then agree with the header: a rule no schema
    states, so they are left out here.)"""
    header = {
        "version": _uint(2**32 - 1),
        "height": _uint(_SAFE),
        "prev_hash": _hex(64),
        "merkle_root": _hex(64),
        "timestamp": _uint(_SAFE),
        "bits": _uint(2**32 - 1),
        "miner": _hex(64),
        "nonce": _uint(_SAFE),
    }
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["header", "transactions"],
        "properties": {
            "header": {
                "type": "object",
                "additionalProperties": False,
                "required": list(header),
                "properties": header,
            },
            "transactions": {"type": "array", "maxItems": 2000, "items": tx},
        },
    }


def _bodies(network: str) -> dict[tuple[str, str], dict[str, Any]]:
    tx = transaction_schema(network)
    return {
        ("post", "/v1/blocks"): block_schema(tx),
        # The peer protocol parses its own messages; a bad one is answered 200 "rejected",
        # 403 (a refused hello) or 422, as each route says.
        ("post", "/p2p/hello"): _ANY,
        ("post", "/p2p/blocks"): _ANY,
        ("post", "/p2p/transactions"): {
            "type": "object",
            "required": ["transactions"],
            "properties": {"transactions": {"type": "array", "maxItems": 1000}},
        },
        ("post", "/p2p/headers"): {
            "type": "object",
            "required": ["locator"],
            "properties": {
                "locator": _LOCATOR,
                "limit": {"type": "integer", "minimum": 1, "maximum": 2000},
            },
        },
        ("post", "/v1/transactions"): tx,
        ("post", "/v1/transactions/batch"): {
            "type": "object",
            "additionalProperties": False,
            "required": ["transactions"],
            "properties": {
                "transactions": {
                    "type": "array",
                    "maxItems": 1000,
                    # Each item gets its own outcome in the answer, whatever it holds.
                    "items": {"anyOf": [tx, {}], "description": "a transaction, as above"},
                }
            },
        },
    }


def _inline_bodies(schema: dict[str, Any]) -> None:
    """A body schema a route embedded from ``model_json_schema()`` carries its own
    ``$defs``, which ``#/$defs/..`` cannot reach from the document's root: inline them."""
    for operations in schema["paths"].values():
        for operation in operations.values():
            content = operation.get("requestBody", {}).get("content", {})
            for media in content.values():
                body = media.get("schema")
                if isinstance(body, dict) and "$defs" in body:
                    media["schema"] = _resolve(body, body["$defs"])


def document(app: FastAPI, network: str) -> None:
    """Make ``app``'s OpenAPI description exact (see the module docstring)."""
    bodies = _bodies(network)
    plain: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = plain()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components[JSON_VALUE] = _JSON_VALUE_SCHEMA
        components["ErrorOut"] = _model_schema(ErrorOut)
        _document_statuses(schema)
        for unused in ("HTTPValidationError", "ValidationError"):  # answered as ErrorOut
            components.pop(unused, None)
        for (method, path), body in bodies.items():
            operation = schema["paths"].get(path, {}).get(method)
            # (a peer route that documents its own body keeps it)
            if operation is not None and not (
                path.startswith("/p2p") and "requestBody" in operation
            ):
                operation["requestBody"] = _json_body(body)
        _inline_bodies(schema)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
