"""Node keys for simulated nodes: real Ed25519 node keys, or a cheap stand-in.

A thousand nodes re-handshake with each peer every ``REFRESH_MS`` (a full hello: two
signatures made and two checked), which with Ed25519 costs more CPU than the whole rest
of a run. So by default the simulator abstracts the hello signatures: each node signs
with a keyed SHA-512 (``SimKey``), and for the run the core's ``verify_hello`` is
swapped for one that checks those against the node's secret (``stand_in_signatures``),
so a wrong signature still fails. The CPU time of the real ones is charged instead
(``Costs.sign_us``, ``Costs.verify_us``). ``real_signatures`` keeps real Ed25519 keys
and checks throughout.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from contextlib import contextmanager
from typing import cast

from node.p2p import protocol
from node.p2p.identity import HELLO_DOMAIN, NodeKey

__all__ = ["KeyRing", "SimKey", "stand_in_signatures"]


class SimKey:
    """Stands in for ``NodeKey``: ``node_id`` and ``sign_hello``, over a secret."""

    def __init__(self, secret: bytes) -> None:
        self.secret = secret
        self.node_id = hashlib.sha256(b"ailedger-sim-node-id\n" + secret).hexdigest()

    def sign_hello(self, transcript: bytes) -> str:
        return hashlib.sha512(self.secret + HELLO_DOMAIN + transcript).hexdigest()


class KeyRing:
    """The simulated nodes' keys, by node_id, so stand-in signatures can be checked."""

    def __init__(self, real: bool) -> None:
        self.real = real
        self._keys: dict[str, SimKey] = {}

    def make(self, seed: bytes) -> NodeKey:
        """The key of the node ``seed`` names (the same seed, the same key)."""
        secret = hashlib.sha256(b"ailedger-sim-node-key\n" + seed).digest()
        if self.real:
            return NodeKey.from_seed(secret)
        key = SimKey(secret)
        self._keys[key.node_id] = key
        return cast("NodeKey", key)  # all the core uses of a key: node_id, sign_hello

    def verify(self, node_id: str, transcript: bytes, signature: object) -> bool:
        key = self._keys.get(node_id)
        return (
            key is not None
            and isinstance(signature, str)
            and hmac.compare_digest(key.sign_hello(transcript), signature)
        )


@contextmanager
def stand_in_signatures(ring: KeyRing) -> Iterator[None]:
    """While the run lasts, the core checks hellos against ``ring`` (unless it is real)."""
    if ring.real:
        yield
        return
    name = "verify_hello"  # the core's module-level name for the check
    real = vars(protocol)[name]
    vars(protocol)[name] = ring.verify
    try:
        yield
    finally:
        vars(protocol)[name] = real
