"""Every way the consensus rules can say no, as one hierarchy.

    ConsensusError                   base of everything raised by ``consensus``
    ├── RejectError(code, message)   the data breaks a rule; ``code`` is a stable reject code
    │   ├── InvalidTx                a transaction is malformed, badly signed, or breaks a
    │   │                            ledger rule
    │   └── InvalidBlock             a block or header is invalid; remember it and its descendants
    ├── BlockTooNew(timestamp, limit)  a header's time is past the local clock's allowance
    │                                (code "time-too-new"): not invalid, only early; hold
    │                                it back, never punish
    └── NotFoundError                a lookup missed (a separate family: a miss is not bad data)
        ├── BlockNotFound
        └── TxNotFound

Reject codes are short kebab-case strings in the spirit of Bitcoin's
``BlockValidationState`` ("high-hash", "bad-merkle-root", "bad-signature"). The node maps
them to HTTP status codes and to peer discouragement in one place each; they never change
meaning once published.
"""

from __future__ import annotations

__all__ = [
    "BlockNotFound",
    "BlockTooNew",
    "ConsensusError",
    "InvalidBlock",
    "InvalidTx",
    "NotFoundError",
    "RejectError",
    "TxNotFound",
]


class ConsensusError(Exception):
    """Base class of every error raised by the consensus rules."""


class RejectError(ConsensusError):
    """Data that breaks a consensus rule, with a stable reject code."""

    def __init__(self, code: str, message: str = "", *, txid: str | None = None) -> None:
        self.code = code
        self.message = message or code
        self.txid = txid
        super().__init__(f"{code}: {self.message}")


class InvalidTx(RejectError):
    """A transaction that can never be valid in this context."""


class InvalidBlock(RejectError):
    """A block (or its header) that is invalid; so are all its descendants."""


class BlockTooNew(ConsensusError):
    """A header timestamped beyond ``now + max_future_ms``: held back, not invalid."""

    code = "time-too-new"

    def __init__(self, timestamp: int, limit: int) -> None:
        self.timestamp = timestamp
        self.limit = limit
        self.message = f"block time {timestamp} is more than the allowed drift past {limit}"
        super().__init__(self.message)


class NotFoundError(ConsensusError):
    """A lookup that found nothing."""


class BlockNotFound(NotFoundError):
    """No block or header with that hash or height."""


class TxNotFound(NotFoundError):
    """No transaction with that txid."""
