"""The hello messages of the peer protocol, decoded, and their JSON form (design.md §5).

``Hello`` opens a handshake (``POST /p2p/hello``); the answer is a ``HelloAnswer``: the
answerer's own hello (with its fresh challenge) and its signature over the transcript;
the dialer then sends a ``HelloFinish`` (``POST /p2p/hello/finish``) with its own
signature, and is given a session token. ``from_json`` of each refuses anything that is
not exactly the message (``MalformedMessage``), so the core sees only well-typed values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Best", "Hello", "HelloAnswer", "HelloFinish", "MalformedMessage"]

_HEX = frozenset("0123456789abcdef")


class MalformedMessage(ValueError):
    """A message that is not one: a field missing, of the wrong type or out of bounds."""


def _text(obj: dict[str, Any], name: str, limit: int = 256) -> str:
    value = obj.get(name)
    if not isinstance(value, str) or not 0 < len(value) <= limit:
        raise MalformedMessage(f"{name}: a non-empty string of at most {limit} characters")
    return value


def _hex(obj: dict[str, Any], name: str, length: int) -> str:
    value = obj.get(name)
    if not isinstance(value, str) or len(value) != length or not set(value) <= _HEX:
        raise MalformedMessage(f"{name}: {length} lowercase hex characters")
    return value


def _dict(obj: Any, what: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise MalformedMessage(f"{what} must be a JSON object")
    return obj


@dataclass(frozen=True)
class Best:
    """A node's best block as it announces it."""

    hash: str
    height: int
    chain_work: int

    def to_json(self) -> dict[str, Any]:
        return {"hash": self.hash, "height": self.height, "chain_work": f"{self.chain_work:x}"}

    @classmethod
    def from_json(cls, obj: Any) -> Best:
        obj = _dict(obj, "best")
        height = obj.get("height")
        if type(height) is not int or not 0 <= height < 2**63:
            raise MalformedMessage("best.height: an integer >= 0")
        try:
            work = int(_text(obj, "chain_work", 80), 16)
        except ValueError:
            raise MalformedMessage("best.chain_work: hex") from None
        return cls(_hex(obj, "hash", 64), height, work)


@dataclass(frozen=True)
class Hello:
    """Who a node says it is, where it listens, its best block, and a fresh challenge."""

    network: str
    genesis_hash: str
    node_id: str
    version: str
    listen_url: str
    best: Best
    challenge: str
    protocol: int = 1

    def to_json(self) -> dict[str, Any]:
        return {
            "network": self.network,
            "genesis_hash": self.genesis_hash,
            "node_id": self.node_id,
            "version": self.version,
            "protocol": self.protocol,
            "listen_url": self.listen_url,
            "best": self.best.to_json(),
            "challenge": self.challenge,
        }

    @classmethod
    def from_json(cls, obj: Any) -> Hello:
        obj = _dict(obj, "hello")
        protocol = obj.get("protocol", 1)
        if type(protocol) is not int:
            raise MalformedMessage("protocol: an integer")
        return cls(
            network=_text(obj, "network", 64),
            genesis_hash=_text(obj, "genesis_hash", 64),
            node_id=_hex(obj, "node_id", 64),
            version=_text(obj, "version", 64),
            listen_url=_text(obj, "listen_url", 2048),
            best=Best.from_json(obj.get("best")),
            challenge=_hex(obj, "challenge", 64),
            protocol=protocol,
        )


@dataclass(frozen=True)
class HelloAnswer:
    """The answerer's hello and its signature (role ``answer``) over the transcript."""

    hello: Hello
    signature: str

    def to_json(self) -> dict[str, Any]:
        return {**self.hello.to_json(), "signature": self.signature}

    @classmethod
    def from_json(cls, obj: Any) -> HelloAnswer:
        obj = _dict(obj, "hello answer")
        return cls(Hello.from_json(obj), _hex(obj, "signature", 128))


@dataclass(frozen=True)
class HelloFinish:
    """The dialer's signature (role ``dial``) over the transcript of the answer to it."""

    node_id: str
    challenge: str
    """The answerer's challenge this finishes."""
    signature: str

    def to_json(self) -> dict[str, Any]:
        return {"node_id": self.node_id, "challenge": self.challenge, "signature": self.signature}

    @classmethod
    def from_json(cls, obj: Any) -> HelloFinish:
        obj = _dict(obj, "hello finish")
        return cls(
            _hex(obj, "node_id", 64), _hex(obj, "challenge", 64), _hex(obj, "signature", 128)
        )
