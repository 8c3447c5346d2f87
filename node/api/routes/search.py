"""One search box for people: a txid, a block hash, a height, a digest or a signer key.

``GET /v1/search?q=`` says what the query names, so the explorer (or any client) opens
the right page with one request; it finds, it does not list: the records of a signer
or a digest are paged through ``/v1/records``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel

from node.api.deps import NodeDep
from node.api.openapi import ErrorOut
from node.daemon import Node
from node.store import StoreReader

__all__ = ["SearchMatch", "SearchOut", "router"]


class SearchMatch(BaseModel):
    type: Literal["record", "block", "signer", "digest"]
    id: str
    kind: str | None = None
    status: Literal["confirmed", "pending"] | None = None
    height: int | None = None
    active: bool | None = None


class SearchOut(BaseModel):
    query: str
    matches: list[SearchMatch]


router = APIRouter(tags=["records"])

_HEX64 = re.compile(r"[0-9a-f]{64}")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
MAX_HEIGHT_DIGITS = 18  # heights past 10**18 do not exist, and SQLite integers stop at 2**63


@router.get(
    "/v1/search",
    response_model=SearchOut,
    responses={
        422: {"model": ErrorOut, "description": "q is missing, empty or longer than 200"},
        503: {"model": ErrorOut, "description": "the node's storage failed"},
    },
)
def search(node: NodeDep, q: Annotated[str, Query(min_length=1, max_length=200)]) -> dict[str, Any]:
    """What ``q`` names, best match first: ``record`` (a txid, confirmed or pending),
    ``block`` (a block hash, or a height on the active chain), ``signer`` (a key that
    signed confirmed records), ``digest`` (a ``sha256:`` digest of confirmed records).
    Hex is read case-insensitively; a query that names nothing gets no matches."""
    query = q.strip().lower()
    with node.reader() as reader:
        matches = _matches(node, reader, query)
    return {"query": q, "matches": matches}


def _matches(node: Node, reader: StoreReader, query: str) -> list[dict[str, Any]]:
    if query.isdecimal() and len(query) <= MAX_HEIGHT_DIGITS:
        block_hash = reader.active_hash(int(query))
        return [] if block_hash is None else [_block(node, reader, block_hash)]
    if _DIGEST.fullmatch(query):
        rows, _ = reader.records(digest=query, limit=1)
        return [{"type": "digest", "id": query}] if rows else []
    if not _HEX64.fullmatch(query):
        return []
    found: list[dict[str, Any]] = []
    row = reader.record_row(query)
    if row is not None:
        found.append({"type": "record", "id": query, "kind": row.tx.kind, "status": "confirmed"})
    elif (pending := node.mempool.get(query)) is not None:
        found.append({"type": "record", "id": query, "kind": pending.kind, "status": "pending"})
    if reader.has_block(query):
        found.append(_block(node, reader, query))
    if reader.records(signer=query, limit=1)[0]:
        found.append({"type": "signer", "id": query})
    return found


def _block(node: Node, reader: StoreReader, block_hash: str) -> dict[str, Any]:
    header = reader.get_header(block_hash)
    height = None if header is None else header.height
    active = height is not None and reader.active_hash(height) == block_hash
    return {"type": "block", "id": block_hash, "height": height, "active": active}
