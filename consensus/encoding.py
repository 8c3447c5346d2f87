"""Canonical bytes: RFC 8785 JSON and fixed-width integers.

Everything that is hashed or signed goes through ``canonical_json``, so two honest
implementations always agree on the bytes. RFC 8785 also enforces I-JSON numbers: an
integer outside ±(2**53 - 1), NaN or an infinity cannot be canonicalised and is refused.
"""

from __future__ import annotations

import hashlib
from typing import Any

import rfc8785

from consensus.errors import InvalidTx

__all__ = ["MAX_SAFE_INTEGER", "canonical_json", "sha256", "sha256_hex"]

MAX_SAFE_INTEGER = 2**53 - 1


def canonical_json(value: Any) -> bytes:
    """RFC 8785 canonical JSON of ``value``; raises ``InvalidTx("bad-json")`` if it has none."""
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise InvalidTx("bad-json", f"not canonicalisable as I-JSON: {exc}") from exc


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
