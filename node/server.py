"""Run one node: the HTTP API under uvicorn, with the node inside its lifespan."""

from __future__ import annotations

import logging
import signal
from types import FrameType

import uvicorn

from consensus.keys import private_key_from_pem
from node.api import create_app
from node.config import Settings
from node.store import Store, StoreError

__all__ = ["run"]


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per peer call is noise


def preflight(settings: Settings) -> None:
    """Fail fast, with one clear line, on what would otherwise fail inside the server:
    an unreadable miner key, or a data directory holding another network's chain."""
    if settings.miner_key is not None:
        private_key_from_pem(settings.miner_key.read_bytes())
    Store.open(settings.db_path, settings.params).close()


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    """SIGTERM ends the process through the interpreter, so that its exit handlers run
    (``multiprocessing`` removes the check workers' fork-server socket directory then).
    uvicorn shuts the node down gracefully first, then raises the signal again with the
    handler it found: this one."""
    raise SystemExit(128 + signum)


def run(settings: Settings) -> None:
    """Serve until SIGINT/SIGTERM; the node stops cleanly with the server."""
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    configure_logging(settings.log_level)
    try:
        preflight(settings)
    except (StoreError, ValueError, OSError) as exc:
        logging.getLogger("ailedger").error("cannot start: %s", exc)
        raise SystemExit(2) from None
    app = create_app(settings, tune_gc=True)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=settings.log_level == "debug",
        timeout_graceful_shutdown=5,
    )
