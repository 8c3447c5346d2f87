"""The app factory: ``create_app(settings)`` builds one node's HTTP API.

The node starts and stops with the app's lifespan; nothing is created at import time, so
a test process can run several apps side by side.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from node.api.errors import error_body, install_error_handlers
from node.api.middleware import BodyLimit, RateLimit
from node.api.routes import admin, chain, p2p, records, transactions
from node.config import Settings
from node.daemon import Node
from node.version import VERSION

__all__ = ["create_app"]


def create_app(
    settings: Settings, *, node: Node | None = None, freeze_heap: bool = False
) -> FastAPI:
    """``freeze_heap``: once the node has started, move every object then alive out of
    the garbage collector's sight (``gc.freeze``), for a process that runs only this
    app. The modules, the app and the loaded header tree live as long as the process,
    and each full collection walked all of them: while a node synced 10,000 headers,
    collections held up a run for up to 170 ms, and the headers phase took 0.48-0.60 s
    with the heap frozen against 0.69-0.87 s without."""
    node = node or Node(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await node.start()
        if freeze_heap:
            gc.collect()  # what is garbage now is collected, not frozen
            gc.freeze()
        try:
            yield
        finally:
            await node.stop()

    app = FastAPI(
        title="ailedger",
        version=VERSION,
        summary="A peer-to-peer proof-of-work provenance ledger for AI artifacts",
        lifespan=lifespan,
    )
    app.state.node = node
    install_error_handlers(app)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(
            error_body("internal-error", "unexpected error; see the node log"), status_code=500
        )

    for module in (chain, transactions, records, admin, p2p):
        app.include_router(module.router)
    app.add_middleware(RateLimit, rate=settings.rate_limit_per_s, burst=settings.rate_limit_burst)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes, on_reject=node.p2p.oversize)
    return app
