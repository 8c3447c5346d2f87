"""The p2p layer as blob replication sees it (``node.blobs.PeerLink``).

Peers are named by node_id, and every call is made within the session this node holds
at that peer (``X-Ailedger-Session``), like any other /p2p request: a peer that serves
a wrong blob is discouraged under the identity it proved, never under an address.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from node.blobs.replication import FETCH_TIMEOUT
from node.p2p.client import SESSION_HEADER
from node.p2p.service import P2P

__all__ = ["BlobPeers"]


class BlobPeers:
    def __init__(self, p2p: P2P) -> None:
        self.p2p = p2p

    def peer_urls(self) -> list[str]:
        """The node_ids of the peers connected now."""
        return [peer.node_id for peer in self.p2p.peers() if peer.node_id is not None]

    @asynccontextmanager
    async def get(self, node_id: str, path: str) -> AsyncIterator[httpx.Response]:
        url, headers = self._session(node_id, path)
        http = self._http()
        async with http.stream("GET", url, headers=headers, timeout=FETCH_TIMEOUT) as response:
            yield response

    async def post(self, node_id: str, path: str, body: Any) -> None:
        url, headers = self._session(node_id, path)
        await self._http().post(url, json=body, headers=headers)

    def discourage(self, node_id: str, reason: str) -> None:
        self.p2p.punish(node_id, reason)

    def _session(self, node_id: str, path: str) -> tuple[str, dict[str, str]]:
        peer = self.p2p.protocol.peer(node_id)
        if peer is None or peer.token is None:
            raise httpx.TransportError(f"not connected to {node_id}")
        return f"{peer.url}{path}", {SESSION_HEADER: peer.token}

    def _http(self) -> httpx.AsyncClient:
        if self.p2p.client is None:
            raise httpx.TransportError("the p2p client is not running")
        return self.p2p.client.http
