"""``POST /v1/blocks``: a block mined outside the node's peers (Bitcoin's ``submitblock``).

A pool, a third-party miner or a test hands in a block in its JSON form. It goes through
the same path as every block (``Node.submit_block``) and, when it joins the active chain,
is relayed like any other. No session is needed and nobody is blamed for a bad block:
the sender has no identity here. Blocks cost validation, so besides the API's per-client
write limit they share one bucket (``RATE_PER_S``, ``BURST``) per node.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from consensus.block import Block
from consensus.errors import InvalidBlock
from node.api.deps import NodeDep, json_body
from node.api.errors import ApiError, reject_status
from node.api.middleware import TokenBucket
from node.api.routes.p2p import BLOCK_BODY, error_responses

__all__ = ["BURST", "RATE_PER_S", "router"]

router = APIRouter(tags=["chain"])

RATE_PER_S = 20.0
BURST = 40
JsonBody = Annotated[Any, Depends(json_body)]


class SubmitBlockOut(BaseModel):
    hash: str
    status: Literal["accepted", "duplicate", "need-parents", "too-new"]


def _bucket(request: Request) -> TokenBucket:
    state = request.app.state
    bucket: TokenBucket | None = getattr(state, "submitblock_bucket", None)
    if bucket is None:
        bucket = TokenBucket(RATE_PER_S, BURST, BURST, time.monotonic())
        state.submitblock_bucket = bucket
    return bucket


@router.post(
    "/v1/blocks",
    response_model=SubmitBlockOut,
    responses=error_responses(413, 422, 429, 503)
    | {400: error_responses(403)[403] | {"description": "the block is invalid (its code)"}},
    openapi_extra=BLOCK_BODY,
)
async def submit_block(node: NodeDep, request: Request, body: JsonBody) -> dict[str, Any]:
    """Submit a block (JSON form): accepted, duplicate, need-parents (its parent is not
    known here) or too-new (held back until the clock allows it); an invalid one is
    answered with its reject code (400, or 422 when it is not a block at all)."""
    wait = _bucket(request).take(time.monotonic())
    if wait > 0:
        raise ApiError(429, "rate-limited", f"too many blocks submitted; retry in {wait:.1f} s")
    try:
        block = Block.from_json(body)
    except InvalidBlock as exc:
        raise ApiError(reject_status(exc.code), exc.code, exc.message) from None
    result = await node.submit_block(block)
    if result.outcome.value == "rejected":
        code = result.code or "rejected"
        raise ApiError(reject_status(code), code, result.message or "invalid block")
    return {"hash": block.hash, "status": result.outcome.value}
