"""Record queries: by digest, kind and signer; one record; its lineage."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from node.api.deps import NodeDep
from node.api.errors import ApiError
from node.api.schemas import LineageOut, RecordsOut
from node.store.queries import CURSOR_PATTERN
from node.views import confirmed_view, lineage, record_view

__all__ = ["router"]

router = APIRouter(tags=["records"])

DIGEST_PATTERN = r"^sha256:[0-9a-f]{64}$"
HEX64 = r"^[0-9a-f]{64}$"
Kind = Literal["dataset", "model", "inference", "attestation", "revocation"]


@router.get("/v1/records", response_model=RecordsOut)
def records(
    node: NodeDep,
    digest: Annotated[str | None, Query(pattern=DIGEST_PATTERN)] = None,
    kind: Annotated[Kind | None, Query()] = None,
    signer: Annotated[str | None, Query(pattern=HEX64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[  # (checked by the store: a bad one is 422 "bad-cursor")
        str | None, Query(json_schema_extra={"pattern": CURSOR_PATTERN})
    ] = None,
) -> dict[str, Any]:
    """Confirmed records matching every filter given, newest first, a page at a time."""
    with node.reader() as reader:
        try:
            rows, next_cursor = reader.records(
                digest=digest, kind=kind, signer=signer, limit=limit, cursor=cursor
            )
        except ValueError as exc:
            raise ApiError(422, "bad-cursor", str(exc)) from exc
    tip_height = node.chain.height
    return {"records": [confirmed_view(r, tip_height) for r in rows], "next_cursor": next_cursor}


@router.get("/v1/records/{txid}")
def record(node: NodeDep, txid: str) -> dict[str, Any]:
    with node.reader() as reader:
        return record_view(reader, txid, node.chain.height, node.mempool.get(txid))


@router.get("/v1/records/{txid}/lineage", response_model=LineageOut, response_model_by_alias=True)
def record_lineage(
    node: NodeDep,
    txid: str,
    direction: Literal["ancestors", "descendants"] = "ancestors",
    depth: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """What the record derives from (ancestors) or what derives from it (descendants)."""
    with node.reader() as reader:
        return lineage(reader, txid, direction, depth, node.chain.height)
