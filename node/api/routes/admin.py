"""Admin endpoints, behind ``Authorization: Bearer <admin token>``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from node.api.deps import AdminDep, MiningDep, NodeDep, P2PDep
from node.api.errors import ApiError
from node.api.schemas import AdminMineIn, AdminMiningIn, AdminNetworkIn, AdminPeerIn, MinedOut

__all__ = ["router"]

router = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[AdminDep])


@router.post("/mine", response_model=MinedOut)
async def mine(mining: MiningDep, body: AdminMineIn) -> dict[str, Any]:
    """Mine ``blocks`` blocks now on the active tip with the mempool's transactions."""
    return {"hashes": await mining.mine_blocks(body.blocks)}


@router.post("/mining")
async def mining(mining: MiningDep, body: AdminMiningIn) -> dict[str, Any]:
    """Start or stop the background miner."""
    await mining.set_active(body.enabled)
    return {"mining": mining.active}


@router.post("/peers")
async def add_peer(p2p: P2PDep, body: AdminPeerIn) -> dict[str, Any]:
    """Connect to a peer now (clears a discouragement of that address)."""
    url = body.url.rstrip("/")
    if not url.startswith(("http://", "https://")) or url == p2p.url:
        raise ApiError(422, "bad-request", "url must be another node's http(s) base URL")
    connected = await p2p.connect_now(url)
    peer = p2p.table.get(url)
    return {"url": url, "connected": connected, "reason": peer.reason if peer else None}


@router.delete("/peers")
async def remove_peer(p2p: P2PDep, url: str) -> dict[str, Any]:
    """Disconnect a peer; it may reconnect later by the normal rules."""
    if not await p2p.disconnect(url):
        raise ApiError(404, "not-found", f"no peer {url}")
    return {"url": url.rstrip("/"), "connected": False}


@router.post("/network")
async def network(node: NodeDep, p2p: P2PDep, body: AdminNetworkIn) -> dict[str, Any]:
    """Switch all p2p traffic off (inbound gets 503) or on (reconnect and sync)."""
    await p2p.set_active(body.active)
    return {"network_active": node.network_active}
