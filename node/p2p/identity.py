"""Node identity (design.md §5): a persistent Ed25519 node key, and the hello proofs.

A node's ``node_id`` is the raw public key of its node key, 64 lowercase hex. The key
lives in the data directory as ``node_key.pem`` (mode 0600), made on first start; a data
directory from before node keys gets one the same way.

The hello exchange proves possession of both keys. The dialer sends a fresh random
challenge; the answerer signs a *transcript* holding the genesis hash, both node ids and
both challenges (its own fresh one too), and the dialer signs the same transcript under
the other role. Each signature covers a challenge its verifier chose a moment before, and
the network's genesis hash, so none can be replayed to another node, another session or
another network. Signatures are over ``b"ailedger/hello/v1\\n" + transcript`` (a domain
no transaction or other message shares).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from consensus.keys import private_key_from_pem, private_key_to_pem, public_key_hex

__all__ = [
    "HELLO_DOMAIN",
    "KEY_FILE",
    "NodeKey",
    "hello_transcript",
    "load_or_create_node_key",
    "verify_hello",
]

HELLO_DOMAIN = b"ailedger/hello/v1\n"
KEY_FILE = "node_key.pem"
_HEX = frozenset("0123456789abcdef")


class NodeKey:
    """A node's private key and its ``node_id``."""

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self.node_id = public_key_hex(key)

    @classmethod
    def from_seed(cls, seed: bytes) -> NodeKey:
        """A key from 32 seed bytes (a simulator's or a test's deterministic node)."""
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    def sign_hello(self, transcript: bytes) -> str:
        return self._key.sign(HELLO_DOMAIN + transcript).hex()

    def pem(self) -> bytes:
        return private_key_to_pem(self._key)


def hello_transcript(
    *,
    role: str,
    genesis_hash: str,
    dialer: str,
    answerer: str,
    dialer_challenge: str,
    answerer_challenge: str,
) -> bytes:
    """What one side of a hello signs: ``role`` is ``"answer"`` or ``"dial"``, so the
    answerer's signature can never stand for the dialer's."""
    fields = {
        "role": role,
        "genesis_hash": genesis_hash,
        "dialer": dialer,
        "answerer": answerer,
        "dialer_challenge": dialer_challenge,
        "answerer_challenge": answerer_challenge,
    }
    return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()


def verify_hello(node_id: str, transcript: bytes, signature: object) -> bool:
    """Whether ``signature`` (hex) is ``node_id``'s over ``transcript``."""
    if not (_is_hex(node_id, 64) and isinstance(signature, str) and _is_hex(signature, 128)):
        return False
    try:
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(node_id))
        key.verify(bytes.fromhex(signature), HELLO_DOMAIN + transcript)
    except (InvalidSignature, ValueError):
        return False
    return True


def _is_hex(text: object, length: int) -> bool:
    return isinstance(text, str) and len(text) == length and set(text) <= _HEX


def load_or_create_node_key(data_dir: Path) -> NodeKey:
    """The node key of ``data_dir``, made (mode 0600, written atomically) if it has none."""
    path = data_dir / KEY_FILE
    if path.exists():
        return NodeKey(private_key_from_pem(path.read_bytes()))
    key = NodeKey(Ed25519PrivateKey.generate())
    tmp = path.with_name(f".{KEY_FILE}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, key.pem())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return key
