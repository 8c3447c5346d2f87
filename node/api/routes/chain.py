"""Chain reads: health, metrics, status, blocks, headers, tips."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from consensus.chain import Status
from consensus.errors import BlockNotFound
from node.api.deps import MiningDep, NodeDep, P2PDep
from node.api.schemas import BlocksOut, HeadersOut, HealthOut, PeersOut, StatusOut, TipsOut
from node.daemon import Node
from node.version import VERSION

__all__ = ["router"]

router = APIRouter()

MAX_HEADERS = 2000
MAX_BLOCKS = 500


@router.get("/healthz", response_model=HealthOut, tags=["node"])
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/metrics", tags=["node"], response_class=Response)
async def metrics(node: NodeDep) -> Response:
    node.refresh_gauges()
    return Response(generate_latest(node.metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/v1/status", response_model=StatusOut, tags=["chain"])
async def status(node: NodeDep, p2p: P2PDep, mining: MiningDep) -> dict[str, Any]:
    tip = node.chain.tip
    return {
        "network": node.params.network,
        "genesis_hash": node.genesis_hash,
        "node_id": node.node_id,
        "version": VERSION,
        "height": tip.height,
        "best_hash": tip.hash,
        "chain_work": f"{tip.chain_work:064x}",
        "bits": tip.bits,
        "mempool": {"count": len(node.mempool), "bytes": node.mempool.bytes},
        "peers": p2p.peer_count(),
        "mining": mining.active,
        "syncing": node.syncing,
        "network_active": node.network_active,
    }


@router.get("/v1/blocks", response_model=BlocksOut, tags=["chain"])
def blocks(
    node: NodeDep,
    from_height: Annotated[int | None, Query(ge=0)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_BLOCKS)] = 20,
) -> dict[str, Any]:
    """Header summaries of the active chain, ascending from ``from_height`` (default: the
    last ``limit`` blocks)."""
    tip_height = node.chain.height
    start = max(tip_height - limit + 1, 0) if from_height is None else from_height
    entries = node.chain.active.entries(start, start + limit)
    out = []
    with node.reader() as reader:
        for entry in entries:
            header = reader.get_header(entry.hash)
            txids = reader.block_txids(entry.hash)
            if header is None or txids is None:
                continue
            out.append({**header.to_json(), "hash": entry.hash, "tx_count": len(txids)})
    return {"blocks": out}


@router.get("/v1/blocks/{block_id}", tags=["chain"])
def block(node: NodeDep, block_id: str) -> Response:
    """A block by hash (64 hex) or by height on the active chain."""
    with node.reader() as reader:
        block_hash: str | None = block_id
        if block_id.isdecimal() and len(block_id) < 20:
            block_hash = reader.active_hash(int(block_id))
        body = (
            None
            if block_hash is None
            else reader.block_json_bytes(block_hash.lower(), with_header_hex=True)
        )
    if body is None:
        raise BlockNotFound(f"no block {block_id}")
    return Response(body, media_type="application/json")


@router.get("/v1/headers", response_model=HeadersOut, tags=["chain"])
def headers(
    node: NodeDep,
    from_height: Annotated[int, Query(ge=0)] = 0,
    count: Annotated[int, Query(ge=1, le=MAX_HEADERS)] = MAX_HEADERS,
) -> dict[str, Any]:
    """128-byte headers of the active chain as hex, from ``from_height``."""
    return {"headers": node.header_hexes(from_height, count)}


@router.get("/v1/chain/tips", response_model=TipsOut, tags=["chain"])
async def tips(node: NodeDep) -> dict[str, Any]:
    return {"tips": await node.run(_tips, node)}


def _tips(node: Node) -> list[dict[str, Any]]:
    chain = node.chain
    out = []
    for tip in chain.tree.tips():
        fork = chain.tree.fork_point(tip, chain.tip)
        if chain.active.contains(tip):
            status = "active"
        elif tip.status is Status.INVALID:
            status = "invalid"
        elif chain.tree.is_candidate(tip):
            status = "valid-fork"
        else:
            status = "headers-only"
        out.append(
            {
                "hash": tip.hash,
                "height": tip.height,
                "chain_work": f"{tip.chain_work:064x}",
                "branch_len": tip.height - fork.height,
                "status": status,
            }
        )
    return out


@router.get("/v1/peers", response_model=PeersOut, tags=["node"])
async def peers(node: NodeDep, p2p: P2PDep) -> dict[str, Any]:
    """Every peer we know, connected or not, with any discouragement and its reason."""
    now = node.clock()
    known = [
        p for p in p2p.table.all() if p.connected or p.discouraged(now) or p.last_seen is not None
    ]
    return {"peers": [p.view(now) for p in known]}
