"""Submitting and reading transactions, proofs and the mempool."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from consensus.errors import RejectError
from node.api.deps import NodeDep, json_body
from node.api.errors import ApiError
from node.api.schemas import BatchIn, BatchOut, MempoolOut, ProofOut, SubmitOut, TransactionIn
from node.errors import NodeError
from node.views import proof, record_view

__all__ = ["router"]

router = APIRouter(tags=["transactions"])

MAX_BATCH = 1000
JsonBody = Annotated[Any, Depends(json_body)]


def _doc_body(model: type[TransactionIn] | type[BatchIn]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }


@router.post(
    "/v1/transactions",
    status_code=202,
    response_model=SubmitOut,
    openapi_extra=_doc_body(TransactionIn),
)
async def submit(node: NodeDep, body: JsonBody) -> Any:
    """Submit one signed record; 202 once it is validated and durable in the mempool."""
    (result,) = await node.submit_transactions([body])
    if result.error is not None:
        raise result.error
    return JSONResponse({"txid": result.txid, "status": "pending"}, status_code=202)


@router.post("/v1/transactions/batch", response_model=BatchOut, openapi_extra=_doc_body(BatchIn))
async def submit_batch(node: NodeDep, body: JsonBody) -> dict[str, Any]:
    """Submit up to 1000 records; each gets its own outcome."""
    if (
        not isinstance(body, dict)
        or set(body) != {"transactions"}
        or not isinstance(body["transactions"], list)
    ):
        raise ApiError(422, "bad-request", 'body must be {"transactions": [...]}')
    txs = body["transactions"]
    if len(txs) > MAX_BATCH:
        raise ApiError(413, "batch-too-large", f"at most {MAX_BATCH} transactions a batch")
    results = await node.submit_transactions(txs)
    return {"results": [_batch_result(r.txid, r.status, r.error) for r in results]}


def _batch_result(txid: str, status: str, error: RejectError | NodeError | None) -> dict[str, Any]:
    out: dict[str, Any] = {"txid": txid, "status": status}
    if error is not None:
        out["error"] = {"code": error.code, "message": error.message}
    return out


@router.get("/v1/transactions/{txid}")
def transaction(node: NodeDep, txid: str) -> dict[str, Any]:
    """The transaction with its status; when confirmed, where and how deep."""
    with node.reader() as reader:
        return record_view(reader, txid, node.chain.height, node.mempool.get(txid))


@router.get("/v1/transactions/{txid}/proof", response_model=ProofOut)
def transaction_proof(node: NodeDep, txid: str) -> dict[str, Any]:
    """An RFC 9162 inclusion proof of the transaction in its block on the active chain."""
    with node.reader() as reader:
        return proof(reader, txid, node.chain.height)


@router.get("/v1/mempool", response_model=MempoolOut)
async def mempool(node: NodeDep) -> dict[str, Any]:
    pool = node.mempool
    return {"count": len(pool), "bytes": pool.bytes, "txids": pool.txids()}
