"""The bare loops the project's code is measured against, in this process and this run."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from benchlib.timing import best_rate

__all__ = [
    "PREFIX",
    "UNREACHABLE",
    "bare_midstate_rate",
    "bare_midstate_run",
    "bare_verify_rate",
    "bare_verify_run",
    "midstate_loop",
]

PREFIX = bytes(range(120))
"""A 120-byte header prefix: what the miner's midstate covers."""
UNREACHABLE = 0
"""A target no hash meets in practice: every nonce of a range is tried."""


def midstate_loop(prefix: bytes, target: int, count: int) -> int | None:
    """The plain way to search nonces: copy a SHA-256 midstate, feed 8 bytes, compare."""
    target_bytes = target.to_bytes(32, "big")
    midstate = hashlib.sha256(prefix)
    for nonce in range(count):
        state = midstate.copy()
        state.update(nonce.to_bytes(8, "big"))
        if state.digest() <= target_bytes:
            return nonce
    return None


def bare_midstate_run(count: int) -> Callable[[], object]:
    """One run of ``midstate_loop`` over ``count`` nonces that no hash meets."""
    return lambda: midstate_loop(PREFIX, UNREACHABLE, count)


def bare_midstate_rate(count: int, repeats: int = 3) -> float:
    """Hashes per second of ``midstate_loop`` over ``count`` nonces, best of ``repeats``."""
    return best_rate(bare_midstate_run(count), count, repeats)


def bare_verify_run(message_len: int, count: int) -> Callable[[], object]:
    """``count`` calls of ``Ed25519PublicKey.verify`` on a message of ``message_len`` bytes."""
    key = Ed25519PrivateKey.from_private_bytes(bytes(32))
    message = bytes(range(256)) * (message_len // 256) + bytes(message_len % 256)
    signature = key.sign(message)
    verify = key.public_key().verify

    def run() -> None:
        for _ in range(count):
            verify(signature, message)

    return run


def bare_verify_rate(message_len: int, count: int, repeats: int = 3) -> float:
    """Bare verifications per second, best of ``repeats``."""
    return best_rate(bare_verify_run(message_len, count), count, repeats)
