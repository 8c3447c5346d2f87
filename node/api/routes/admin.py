"""Admin endpoints, behind ``Authorization: Bearer <admin token>``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from node.api.deps import AdminDep, NodeDep
from node.api.schemas import AdminMineIn, AdminMiningIn, MinedOut

__all__ = ["router"]

router = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[AdminDep])


@router.post("/mine", response_model=MinedOut)
async def mine(node: NodeDep, body: AdminMineIn) -> dict[str, Any]:
    """Mine ``blocks`` blocks now on the active tip with the mempool's transactions."""
    return {"hashes": await node.mine_blocks(body.blocks)}


@router.post("/mining")
async def mining(node: NodeDep, body: AdminMiningIn) -> dict[str, Any]:
    """Start or stop the background miner."""
    await node.set_mining(body.enabled)
    return {"mining": node.mining}
