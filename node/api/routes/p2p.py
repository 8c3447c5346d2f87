"""The peer protocol's HTTP paths (design.md §5), under /p2p."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import Response

from consensus.errors import BlockNotFound
from node.api.deps import NodeDep, json_body
from node.api.errors import ApiError
from node.p2p.policy import MAX_FETCH_BLOCKS

__all__ = ["router"]

router = APIRouter(prefix="/p2p", tags=["p2p"])

JsonBody = Annotated[Any, Depends(json_body)]
Listen = Annotated[str | None, Header(alias="X-Ailedger-Listen")]
MAX_TXS = 1000
MAX_FETCH_BYTES = 4 << 20


@router.post("/hello")
async def hello(node: NodeDep, body: JsonBody, listen: Listen = None) -> dict[str, Any]:
    """Handshake: answered with our own hello; another network or genesis is refused."""
    return node.p2p.on_hello(body, listen)


@router.post("/blocks")
async def push_block(node: NodeDep, body: JsonBody, listen: Listen = None) -> dict[str, Any]:
    """A new block: accepted, duplicate, need-parents, too-new or rejected (with a code)."""
    return await node.p2p.on_block(body, listen)


@router.post("/transactions")
async def push_transactions(node: NodeDep, body: JsonBody, listen: Listen = None) -> dict[str, Any]:
    node.p2p.sender(listen)
    txs = body.get("transactions") if isinstance(body, dict) else None
    if not isinstance(txs, list) or len(txs) > MAX_TXS:
        node.p2p.discourage_url(listen, "malformed transactions message")
        raise ApiError(422, "bad-request", f'body must be {{"transactions": [...]}} (<= {MAX_TXS})')
    return await node.p2p.on_transactions(txs, listen)


@router.post("/headers")
async def get_headers(node: NodeDep, body: JsonBody, listen: Listen = None) -> dict[str, Any]:
    """Headers after the first locator hash on our active chain (at most 2000)."""
    node.p2p.sender(listen)
    locator = body.get("locator") if isinstance(body, dict) else None
    limit = body.get("limit", 2000) if isinstance(body, dict) else None
    if (
        not isinstance(locator, list)
        or len(locator) > 200
        or not all(isinstance(h, str) for h in locator)
        or type(limit) is not int
        or not 1 <= limit <= 2000
    ):
        raise ApiError(422, "bad-request", "locator: list of <= 200 hashes; 1 <= limit <= 2000")
    return {"headers": await node.p2p.on_headers(locator, limit)}


@router.get("/blocks")
def get_blocks(
    node: NodeDep, hashes: Annotated[list[str], Query(alias="hash")], listen: Listen = None
) -> Response:
    """A run of blocks (``?hash=..&hash=..``, at most 16) for a syncing peer: those held,
    in the order asked, up to the first one missing and within about 4 MiB."""
    node.p2p.sender(listen)
    if not 1 <= len(hashes) <= MAX_FETCH_BLOCKS:
        raise ApiError(422, "bad-request", f"ask for 1 to {MAX_FETCH_BLOCKS} blocks")
    with node.reader() as reader:
        body = reader.blocks_json_bytes(hashes, MAX_FETCH_BYTES)
    return Response(body, media_type="application/json")


@router.get("/blocks/{block_hash}")
def get_block(node: NodeDep, block_hash: str, listen: Listen = None) -> Response:
    """One block in its JSON form (what a syncing peer fetches, so it is served raw)."""
    node.p2p.sender(listen)
    with node.reader() as reader:
        body = reader.block_json_bytes(block_hash)
    if body is None:
        raise BlockNotFound(f"no block {block_hash}")
    return Response(body, media_type="application/json")


@router.get("/peers")
def get_peers(node: NodeDep, listen: Listen = None) -> dict[str, Any]:
    node.p2p.sender(listen)
    return {"peers": node.p2p.good_addresses()}
