"""Run one node: the HTTP API under uvicorn, with the node inside its lifespan."""

from __future__ import annotations

import logging

import uvicorn

from node.api import create_app
from node.config import Settings

__all__ = ["run"]


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per peer call is noise


def run(settings: Settings) -> None:
    """Serve until SIGINT/SIGTERM; the node stops cleanly with the server."""
    configure_logging(settings.log_level)
    app = create_app(settings)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=settings.log_level == "debug",
        timeout_graceful_shutdown=5,
    )
