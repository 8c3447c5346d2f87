"""Ed25519 key helpers, free of file I/O and randomness (the node generates keys).

Rules for a signer key (``public_key_from_hex``, reject code ``bad-signer``):

- it is the raw 32-byte public key written as 64 lowercase hex characters;
- its y coordinate is canonical (``y < p``), so one key has exactly one spelling and the
  (signer, nonce) and same-signer rules cannot be dodged by re-encoding a key;
- it decodes to a point on the curve;
- it is not one of the eight small-order points: anyone can make signatures that verify
  under those, so a record "signed" by one would prove nothing (libsodium refuses them
  for the same reason).
"""

from __future__ import annotations

import functools

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from consensus.errors import InvalidTx

__all__ = [
    "private_key_from_pem",
    "private_key_from_seed",
    "private_key_to_pem",
    "public_key_from_hex",
    "public_key_hex",
    "signature_problem",
]

_P = 2**255 - 19
_D = (-121665 * pow(121666, _P - 2, _P)) % _P
_Y_MASK = (1 << 255) - 1
# y of the order-8 points (libsodium's blocklist); their negations are the other two.
_Y_ORDER_8 = 2707385501144840649318225287225658788936804267575313519463743609750303402022
_SMALL_ORDER_Y = frozenset({0, 1, _P - 1, _Y_ORDER_8, _P - _Y_ORDER_8})
_HEX = frozenset("0123456789abcdef")


def public_key_hex(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """The raw 32-byte public key of ``key`` as 64 lowercase hex characters."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes_raw().hex()


def _point_problem(raw: bytes, *, check_on_curve: bool = True) -> str | None:
    """Why ``raw`` is not an acceptable Ed25519 public key, or None if it is."""
    y = int.from_bytes(raw, "little") & _Y_MASK  # the top bit is x's sign: any x works
    if y >= _P:
        return "not a canonical point encoding (y >= p)"
    if y in _SMALL_ORDER_Y:
        return "a small-order point, for which anyone can forge signatures"
    # x^2 = (y^2 - 1) / (d y^2 + 1) must be a square; u/v is a square iff u*v is.
    y2 = y * y % _P
    # (x = 0, where the sign bit would matter, only happens for y = +-1: small-order.)
    if check_on_curve and pow((y2 - 1) * (_D * y2 + 1) % _P, (_P - 1) // 2, _P) != 1:
        return "not a point on the curve"
    return None


def public_key_from_hex(text: str, *, check_on_curve: bool = True) -> Ed25519PublicKey:
    """Parse a signer: 64 lowercase hex, canonical, on the curve, not small-order.

    Raises ``InvalidTx("bad-signer")`` naming what is wrong. ``check_on_curve=False``
    leaves the one costly check (a modular exponentiation, about one signature
    verification's time) to ``Ed25519PublicKey.verify``, which refuses such keys anyway.
    """
    if not isinstance(text, str) or len(text) != 64 or not _HEX.issuperset(text):
        raise InvalidTx("bad-signer", "signer: must be 64 lowercase hex characters")
    raw = bytes.fromhex(text)
    problem = _point_problem(raw, check_on_curve=check_on_curve)
    if problem is not None:
        raise InvalidTx("bad-signer", f"signer: {problem}")
    return Ed25519PublicKey.from_public_bytes(raw)


@functools.lru_cache(maxsize=4096)
def _signer_key(signer: str) -> Ed25519PublicKey:
    """The signer's key; ``verify`` itself refuses points off the curve, so skip that here."""
    return public_key_from_hex(signer, check_on_curve=False)


def signature_problem(signer: str, signature: str, message: bytes) -> str | None:
    """Why ``signature`` (hex) is not ``signer``'s Ed25519 signature of ``message``, or
    None if it is. Plain values in and out, so that worker processes can run it."""
    try:
        key = _signer_key(signer)
    except InvalidTx as exc:
        return exc.message
    try:
        key.verify(bytes.fromhex(signature), message)
    except (InvalidSignature, ValueError, TypeError):
        return "signature does not verify for signer and body"
    return None


def private_key_to_pem(key: Ed25519PrivateKey) -> bytes:
    """PKCS#8 PEM of ``key``, unencrypted (the node protects the file with mode 0600)."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def private_key_from_pem(data: bytes) -> Ed25519PrivateKey:
    """Load an unencrypted PEM private key; ``ValueError`` unless it is an Ed25519 key."""
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not an unencrypted PEM private key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"not an Ed25519 private key (found {type(key).__name__})")
    return key


def private_key_from_seed(seed: bytes) -> Ed25519PrivateKey:
    """The Ed25519 key with this 32-byte seed (deterministic: for tests and fixtures)."""
    if not isinstance(seed, bytes) or len(seed) != 32:
        raise ValueError("an Ed25519 seed is exactly 32 bytes")
    return Ed25519PrivateKey.from_private_bytes(seed)
