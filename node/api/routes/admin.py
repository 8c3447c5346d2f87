"""Admin endpoints, behind ``Authorization: Bearer <admin token>``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from node.api.deps import AdminDep, NodeDep
from node.api.errors import ApiError
from node.api.schemas import AdminMineIn, AdminMiningIn, AdminNetworkIn, AdminPeerIn, MinedOut

__all__ = ["router"]

router = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[AdminDep])


@router.post("/mine", response_model=MinedOut)
async def mine(node: NodeDep, body: AdminMineIn) -> dict[str, Any]:
    """Mine ``blocks`` blocks now on the active tip with the mempool's transactions."""
    return {"hashes": await node.mining.mine_blocks(body.blocks)}


@router.post("/mining")
async def mining(node: NodeDep, body: AdminMiningIn) -> dict[str, Any]:
    """Start or stop the background miner."""
    await node.mining.set_active(body.enabled)
    return {"mining": node.mining.active}


@router.post("/peers")
async def add_peer(node: NodeDep, body: AdminPeerIn) -> dict[str, Any]:
    """Connect to a peer now (clears a discouragement of that address)."""
    url = body.url.rstrip("/")
    if not url.startswith(("http://", "https://")) or url == node.p2p.url:
        raise ApiError(422, "bad-request", "url must be another node's http(s) base URL")
    connected = await node.p2p.connect_now(url)
    peer = node.p2p.table.get(url)
    return {"url": url, "connected": connected, "reason": peer.reason if peer else None}


@router.delete("/peers")
async def remove_peer(node: NodeDep, url: str) -> dict[str, Any]:
    """Disconnect a peer; it may reconnect later by the normal rules."""
    if not await node.p2p.disconnect(url):
        raise ApiError(404, "not-found", f"no peer {url}")
    return {"url": url.rstrip("/"), "connected": False}


@router.post("/network")
async def network(node: NodeDep, body: AdminNetworkIn) -> dict[str, Any]:
    """Switch all p2p traffic off (inbound gets 503) or on (reconnect and sync)."""
    await node.p2p.set_active(body.active)
    return {"network_active": node.network_active}
