"""N nodes in one process: each node's app behind httpx's ASGI transport, and their peer
clients routed to each other's apps by host, so whole-network protocol tests run without
a socket or a subprocess (the real-process tests in ``tests/functional`` stay too).

    async with mesh(tmp_path, 3, peers={1: [0], 2: [1]}) as nodes:
        await nodes[0].mine(2)
        await wait_for(lambda: same_tip(nodes))
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from node.api import create_app
from node.daemon import Node
from node.p2p.service import P2P
from tests.node.conftest import ADMIN, regtest_settings

__all__ = ["Member", "Router", "mesh", "same_tip", "wait_for"]


class Router(httpx.AsyncBaseTransport):
    """Sends each request to the app of the node whose host it names; an unknown host
    is a refused connection, as on a network."""

    def __init__(self) -> None:
        self.apps: dict[str, httpx.ASGITransport] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        transport = self.apps.get(request.url.host)
        if transport is None:
            raise httpx.ConnectError(f"no node at {request.url.host}", request=request)
        return await transport.handle_async_request(request)


@dataclass
class Member:
    """One node of the mesh: its URL, its app, a client of its API."""

    index: int
    url: str
    app: FastAPI
    client: httpx.AsyncClient

    @property
    def node(self) -> Node:
        node: Node = self.app.state.node
        return node

    @property
    def p2p(self) -> P2P:
        p2p: P2P = self.app.state.p2p
        return p2p

    async def get(self, path: str, **params: Any) -> Any:
        response = await self.client.get(path, params=params)
        assert response.status_code == 200, response.text
        return response.json()

    async def mine(self, blocks: int = 1) -> list[str]:
        response = await self.client.post("/v1/admin/mine", json={"blocks": blocks}, headers=ADMIN)
        assert response.status_code == 200, response.text
        hashes: list[str] = response.json()["hashes"]
        return hashes

    async def status(self) -> dict[str, Any]:
        status: dict[str, Any] = await self.get("/v1/status")
        return status


def host(index: int) -> str:
    return f"node{index}.test"


@asynccontextmanager
async def mesh(
    root: Path, count: int, *, peers: Mapping[int, Sequence[int]] | None = None
) -> AsyncIterator[list[Member]]:
    """``count`` nodes, node i seeded with the nodes ``peers[i]`` (default: node 0 for
    all the others), started and stopped together."""
    router = Router()
    seeds = peers if peers is not None else {i: [0] for i in range(1, count)}
    async with AsyncExitStack() as stack:
        members = []
        for i in range(count):
            url = f"http://{host(i)}"
            settings = regtest_settings(
                root / f"node{i}",
                listen_url=url,
                peers=[f"http://{host(j)}" for j in seeds.get(i, ())],
            )
            app = create_app(settings, peer_transport=router)
            router.apps[host(i)] = httpx.ASGITransport(app=app)
            client = httpx.AsyncClient(transport=router.apps[host(i)], base_url=url)
            members.append(Member(i, url, app, client))
        for member in members:
            await stack.enter_async_context(member.app.router.lifespan_context(member.app))
            await stack.enter_async_context(member.client)
        yield members


async def wait_for(
    predicate: Callable[[], Awaitable[bool]], *, timeout: float = 30.0, what: str = ""
) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what or predicate}")
        await asyncio.sleep(0.02)


async def same_tip(members: Sequence[Member]) -> bool:
    return len({(await m.status())["best_hash"] for m in members}) == 1
