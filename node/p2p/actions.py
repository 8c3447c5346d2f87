"""The events' answers and the actions of the peer protocol core (``node.p2p.protocol``),
and the chain port it reads: plain values a driver pattern-matches on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from node.p2p.messages import Best, Hello, HelloFinish

__all__ = [
    "Action",
    "ChainView",
    "Dial",
    "Disconnect",
    "Discourage",
    "Discover",
    "Finish",
    "Forget",
    "Persist",
    "Refused",
    "Send",
    "Sync",
]


class ChainView(Protocol):
    """What the core needs of the chain."""

    def best(self) -> Best: ...

    def is_syncing(self) -> bool: ...


class Refused(Exception):
    """An inbound request the core refuses: ``status`` and ``code`` for the answer."""

    def __init__(self, status: int, code: str, message: str) -> None:
        self.status = status
        self.code = code
        self.message = message
        super().__init__(message)


@dataclass(frozen=True)
class Dial:
    url: str
    hello: Hello
    verify: str | None = None
    """The node_id this dial checks the address of (a dial-back), or None."""


@dataclass(frozen=True)
class Finish:
    url: str
    finish: HelloFinish


@dataclass(frozen=True)
class Discover:
    node_id: str
    url: str


@dataclass(frozen=True)
class Sync:
    node_id: str
    url: str
    force: bool = False


@dataclass(frozen=True)
class Send:
    node_id: str
    url: str
    kind: str
    """``block`` or ``tx``."""
    item: str
    """The block hash or txid."""


@dataclass(frozen=True)
class Discourage:
    node_id: str
    url: str | None
    reason: str


@dataclass(frozen=True)
class Disconnect:
    node_id: str
    url: str


@dataclass(frozen=True)
class Persist:
    url: str


@dataclass(frozen=True)
class Forget:
    url: str


Action = Dial | Finish | Discover | Sync | Send | Discourage | Disconnect | Persist | Forget
