"""Errors of the node itself (not of the data): each has a stable code and an HTTP status.

    NodeError(code, message)       base; ``status`` is the HTTP status the API answers with
    ├── MempoolFull                503 mempool-full: the mempool's count or byte bound is reached
    ├── NetworkInactive            503 network-inactive: p2p is switched off by the admin
    └── ShuttingDown               503 shutting-down

A storage failure (``node.store.StoreError``) is answered 503 ``storage-error`` by the API:
we failed, the data may be fine.

Consensus reject codes (``consensus.errors.RejectError``) map to statuses in ``node.api``.
"""

from __future__ import annotations

__all__ = ["MempoolFull", "NetworkInactive", "NodeError", "ShuttingDown"]


class NodeError(Exception):
    status = 500
    code = "internal-error"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None) -> None:
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        super().__init__(message)


class MempoolFull(NodeError):
    status = 503
    code = "mempool-full"


class NetworkInactive(NodeError):
    status = 503
    code = "network-inactive"


class ShuttingDown(NodeError):
    status = 503
    code = "shutting-down"
