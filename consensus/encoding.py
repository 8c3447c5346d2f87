"""Canonical bytes: RFC 8785 JSON, and the SHA-256 hex digest that names them.

Everything that is hashed or signed is RFC 8785 JSON, so two honest implementations
always agree on the bytes. RFC 8785 also enforces I-JSON numbers: an integer outside
±(2**53 - 1), NaN or an infinity cannot be canonicalised and is refused.

``canonical_json`` is the ``rfc8785`` package. ``canonical_bytes`` gives the same bytes
faster for the common case, and refuses JSON nested deeper than ``MAX_JSON_DEPTH``:
where the standard library's C encoder writes a value exactly as RFC 8785 does
(``is_plain``), it writes it; anything else goes to ``canonical_json``.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

import rfc8785

from consensus.errors import InvalidTx

__all__ = [
    "MAX_JSON_DEPTH",
    "MAX_SAFE_INTEGER",
    "canonical_bytes",
    "canonical_json",
    "encode_canonical",
    "is_plain",
    "sha256_hex",
]

MAX_SAFE_INTEGER = 2**53 - 1
MAX_JSON_DEPTH = 32
"""How deep JSON containers may nest (the outermost value is at depth 1)."""


def canonical_json(value: Any) -> bytes:
    """RFC 8785 canonical JSON of ``value``; raises ``InvalidTx("bad-json")`` if it has none."""
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise InvalidTx("bad-json", f"not canonicalisable as I-JSON: {exc}") from exc


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


_SAFE_INTEGERS = range(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER + 1)
_INTEGRAL_FLOATS_AS_DIGITS = 1e21  # RFC 8785 (ECMAScript) writes smaller integral floats as digits
_ENCODER = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, sort_keys=True, separators=(",", ":")
)


def is_plain(value: Any, depth: int = 1) -> bool:
    """True if the stdlib encoder writes ``value`` (nested ``depth`` deep) byte for byte
    as RFC 8785 does.

    It does for str, bool and None; for ints within I-JSON range; for finite floats whose
    ``repr`` is plain decimal (no exponent, no trailing ".0": then both print the shortest
    round-tripping digits the same way); for dicts with ASCII keys (code-point order is
    then UTF-16 order) and for lists, of such values. Anything else goes to ``rfc8785``.
    Raises ``bad-json`` past ``MAX_JSON_DEPTH``, before any recursive encoder could hit
    the interpreter's recursion limit; so it visits every value, with no short cut.
    """
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        return value in _SAFE_INTEGERS
    if kind is float:
        if _INTEGRAL_FLOATS_AS_DIGITS > abs(value) > MAX_SAFE_INTEGER and value.is_integer():
            # RFC 8785 writes 2.0**53 as the digits 9007199254740992: parsed back, that is
            # an integer out of I-JSON range. Refuse it now, so that validity depends only
            # on the canonical bytes (else a block could be valid in one node's memory and
            # invalid after the JSON round trip to its peers).
            raise InvalidTx("bad-json", f"{value!r} is an integer beyond +-(2**53 - 1)")
        text = repr(value)
        return math.isfinite(value) and "e" not in text and not text.endswith(".0")
    if kind is dict or kind is list:
        if depth > MAX_JSON_DEPTH:
            raise InvalidTx("bad-json", f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
        if kind is list:
            return all([is_plain(item, depth + 1) for item in value])
        values_plain = all([is_plain(item, depth + 1) for item in value.values()])
        return values_plain and all(type(k) is str and k.isascii() for k in value)
    return False


def encode_canonical(value: Any, *, plain: bool) -> bytes:
    """RFC 8785 bytes of ``value``: the C encoder if ``plain``, else ``rfc8785``."""
    if plain:
        try:
            return _ENCODER.encode(value).encode("utf-8")
        except UnicodeEncodeError:
            pass  # a lone surrogate: let canonical_json name the problem
    return canonical_json(value)


def canonical_bytes(value: Any) -> bytes:
    """RFC 8785 bytes of any ``value`` (``bad-json`` if it has none), as fast as may be."""
    return encode_canonical(value, plain=is_plain(value))
