"""The peer protocol's HTTP paths (design.md §5), under /p2p.

``POST /p2p/hello`` and ``POST /p2p/hello/finish`` open a session (the node key proofs of
``node.p2p.identity``); every other path needs its token in ``X-Ailedger-Session``: a
request without a valid one is answered 401 and blames nobody.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import Response

from consensus.block import Block
from consensus.errors import BlockNotFound, InvalidBlock
from node.api.deps import NodeDep, P2PDep, json_body
from node.api.errors import ApiError
from node.p2p.messages import MalformedMessage
from node.p2p.policy import MAX_FETCH_BLOCKS
from node.p2p.protocol import Refused

__all__ = ["BLOCK_BODY", "error_responses", "router"]

router = APIRouter(prefix="/p2p", tags=["p2p"])

JsonBody = Annotated[Any, Depends(json_body)]
MAX_TXS = 1000
MAX_FETCH_BYTES = 4 << 20

_ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        }
    },
}
_WHY = {
    401: "no valid session (say hello first); nobody is blamed",
    403: "refused: hello-refused (another network, or ourselves) or peer-discouraged",
    404: "not found",
    413: "body too large",
    422: "malformed message",
    429: "rate-limited",
    503: "p2p is switched off (network-inactive) or the node is shutting down",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` for these error statuses, each with the error body."""
    return {
        s: {"description": _WHY[s], "content": {"application/json": {"schema": _ERROR_SCHEMA}}}
        for s in statuses
    }


def _refused(exc: Refused) -> ApiError:
    return ApiError(exc.status, exc.code, exc.message)


async def sender(p2p: P2PDep, request: Request) -> str:
    """The node_id of the session the request names (async: no thread for a lookup)."""
    try:
        return p2p.sender(request.headers)
    except Refused as exc:
        raise _refused(exc) from None


def _body(properties: dict[str, Any]) -> dict[str, Any]:
    schema = {
        "type": "object",
        "required": sorted(properties),
        "properties": properties,
    }
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


_HEX64 = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
_HEX128 = {"type": "string", "pattern": "^[0-9a-f]{128}$"}
_TEXT = {"type": "string", "minLength": 1, "maxLength": 64}
_HELLO = {
    "network": _TEXT,
    "genesis_hash": _TEXT,
    "node_id": _HEX64,
    "version": _TEXT,
    "listen_url": {"type": "string", "minLength": 1, "maxLength": 2048},
    "best": {
        "type": "object",
        "required": ["hash", "height", "chain_work"],
        "properties": {
            "hash": _HEX64,
            "height": {"type": "integer", "minimum": 0},
            "chain_work": {"type": "string", "pattern": "^[0-9a-fA-F]{1,80}$"},
        },
    },
    "challenge": _HEX64,
}
_FINISH = {"node_id": _HEX64, "challenge": _HEX64, "signature": _HEX128}
BLOCK_BODY = _body(
    {
        "header": {"type": "object"},
        "transactions": {"type": "array", "items": {"type": "object"}, "maxItems": 2000},
    }
)
"""A block in its JSON form (design.md §3; ``hash`` and ``header_hex`` may be added)."""
_TXS_BODY = _body(
    {"transactions": {"type": "array", "items": {"type": "object"}, "maxItems": MAX_TXS}}
)
_HEADERS_BODY = _body(
    {
        "locator": {"type": "array", "items": {"type": "string"}, "maxItems": 200},
        "limit": {"type": "integer", "minimum": 1, "maximum": 2000},
    }
)

Sender = Annotated[str, Depends(sender)]
_SESSION_ERRORS = (401, 403, 413, 422, 429, 503)
SessionHeader = Annotated[str | None, Header(alias="X-Ailedger-Session")]


@router.post(
    "/hello", responses=error_responses(403, 413, 422, 429, 503), openapi_extra=_body(_HELLO)
)
async def hello(p2p: P2PDep, body: JsonBody) -> dict[str, Any]:
    """Handshake, step 1: the answer is our hello (with a fresh challenge) and our
    signature over both challenges; another network or genesis is refused."""
    try:
        return p2p.on_hello(body)
    except MalformedMessage as exc:
        raise ApiError(422, "bad-request", str(exc)) from None
    except Refused as exc:
        raise _refused(exc) from None


@router.post(
    "/hello/finish",
    responses=error_responses(401, 403, 413, 422, 429, 503),
    openapi_extra=_body(_FINISH),
)
async def finish(p2p: P2PDep, body: JsonBody) -> dict[str, Any]:
    """Handshake, step 2: the dialer's signature over our challenge opens a session:
    ``{"session": token}``, to send in ``X-Ailedger-Session`` from then on."""
    try:
        return p2p.on_finish(body)
    except MalformedMessage as exc:
        raise ApiError(422, "bad-request", str(exc)) from None
    except Refused as exc:
        raise _refused(exc) from None


@router.post("/blocks", responses=error_responses(*_SESSION_ERRORS), openapi_extra=BLOCK_BODY)
async def push_block(
    p2p: P2PDep, node_id: Sender, body: JsonBody, session: SessionHeader = None
) -> dict[str, Any]:
    """A new block: accepted, duplicate, need-parents, too-new or rejected (with a code)."""
    try:
        block = Block.from_json(body)
    except InvalidBlock as exc:
        p2p.punish(node_id, f"{exc.code}: {exc.message}")
        return {"status": "rejected", "code": exc.code, "message": exc.message}
    return await p2p.on_block(node_id, block)


@router.post("/transactions", responses=error_responses(*_SESSION_ERRORS), openapi_extra=_TXS_BODY)
async def push_transactions(
    p2p: P2PDep, node_id: Sender, body: JsonBody, session: SessionHeader = None
) -> dict[str, Any]:
    txs = body.get("transactions") if isinstance(body, dict) else None
    if not isinstance(txs, list) or len(txs) > MAX_TXS:
        p2p.punish(node_id, "malformed transactions message")
        raise ApiError(422, "bad-request", f'body must be {{"transactions": [...]}} (<= {MAX_TXS})')
    return await p2p.on_transactions(node_id, txs)


@router.post("/headers", responses=error_responses(*_SESSION_ERRORS), openapi_extra=_HEADERS_BODY)
async def get_headers(
    p2p: P2PDep, node_id: Sender, body: JsonBody, session: SessionHeader = None
) -> dict[str, Any]:
    """Headers after the first locator hash on our active chain (at most 2000)."""
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
    return {"headers": await p2p.on_headers(locator, limit)}


@router.get("/blocks", responses=error_responses(*_SESSION_ERRORS))
def get_blocks(
    node: NodeDep,
    node_id: Sender,
    hashes: Annotated[list[str], Query(alias="hash")],
    session: SessionHeader = None,
) -> Response:
    """A run of blocks (``?hash=..&hash=..``, at most 16) for a syncing peer: those held,
    in the order asked, up to the first one missing and within about 4 MiB."""
    if not 1 <= len(hashes) <= MAX_FETCH_BLOCKS:
        raise ApiError(422, "bad-request", f"ask for 1 to {MAX_FETCH_BLOCKS} blocks")
    with node.reader() as reader:
        body = reader.blocks_json_bytes(hashes, MAX_FETCH_BYTES)
    return Response(body, media_type="application/json")


@router.get("/blocks/{block_hash}", responses=error_responses(404, *_SESSION_ERRORS))
def get_block(
    node: NodeDep, node_id: Sender, block_hash: str, session: SessionHeader = None
) -> Response:
    """One block in its JSON form (what a syncing peer fetches, so it is served raw)."""
    with node.reader() as reader:
        body = reader.block_json_bytes(block_hash)
    if body is None:
        raise BlockNotFound(f"no block {block_hash}")
    return Response(body, media_type="application/json")


@router.get("/peers", responses=error_responses(*_SESSION_ERRORS))
def get_peers(p2p: P2PDep, node_id: Sender, session: SessionHeader = None) -> dict[str, Any]:
    return {"peers": p2p.good_addresses()}
