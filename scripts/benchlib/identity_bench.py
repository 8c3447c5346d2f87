"""Peer identity (design.md §5): what proving who you are costs.

Figure 11: CPU per hello, both sides: two protocol cores (``node.p2p.protocol``) with real
node keys run complete handshakes (hello, signed answer, signed finish, session) in this
process; each side's CPU time is counted around its own calls.

Figure 12: ``GET /p2p/peers`` requests per second within a session (every request's token
looked up and its node checked) against the same route with the session check replaced
by a constant (FastAPI's ``dependency_overrides``), taking turns in one run against one
node app in this process (httpx's ASGI transport: no sockets, so the check's share of a
request is not hidden by the network).
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from benchlib.peer_session import hello_and_finish
from benchlib.report import Figure, Goal
from consensus.genesis import genesis_header
from consensus.params import REGTEST
from node.api import create_app
from node.api.routes import p2p as p2p_routes
from node.config import Settings
from node.p2p.identity import NodeKey
from node.p2p.messages import Best
from node.p2p.protocol import Dial, Finish, PeerProtocol

__all__ = ["bench_handshake", "bench_session_throughput"]

SECTION = "identity"
HANDSHAKES = 300
REQUESTS = 400
REPEATS = 5


@dataclass
class _Chain:
    def best(self) -> Best:
        genesis = genesis_header(REGTEST)
        return Best(genesis.hash, 0, 1)

    def is_syncing(self) -> bool:
        return False


def _core(n: int) -> PeerProtocol:
    return PeerProtocol(
        key=NodeKey.from_seed(bytes([n]) * 32),
        chain=_Chain(),
        network="regtest",
        genesis_hash=genesis_header(REGTEST).hash,
        listen_url=f"http://node{n}.bench",
        rng=random.SystemRandom(),
    )


def _handshake(dialer: PeerProtocol, answerer: PeerProtocol) -> tuple[float, float]:
    """One complete hello; the CPU seconds of the dialer's calls and the answerer's."""
    t0 = time.process_time()
    [dial] = dialer.connect(answerer.listen_url, 0)
    assert isinstance(dial, Dial)
    t1 = time.process_time()
    answer = answerer.hello_received(dial.hello, 0)
    t2 = time.process_time()
    finish = next(
        a for a in dialer.answered(answerer.listen_url, answer, 0) if isinstance(a, Finish)
    )
    t3 = time.process_time()
    token, _ = answerer.finish_received(finish.finish, 0)
    t4 = time.process_time()
    dialer.opened(answerer.listen_url, token, 0)
    t5 = time.process_time()
    return (t1 - t0) + (t3 - t2) + (t5 - t4), (t2 - t1) + (t4 - t3)


def bench_handshake(_: Path) -> list[Figure]:
    """Figure 11: ms of CPU per hello, both sides together (each side's share in detail)."""
    best_total, best_dial, best_answer = float("inf"), 0.0, 0.0
    for _ in range(REPEATS):
        dial_s = answer_s = 0.0
        for n in range(HANDSHAKES):
            dialer, answerer = _core(1 + n % 100), _core(200)
            d, a = _handshake(dialer, answerer)
            dial_s, answer_s = dial_s + d, answer_s + a
        if dial_s + answer_s < best_total:
            best_total, best_dial, best_answer = dial_s + answer_s, dial_s, answer_s
    per = 1000 / HANDSHAKES
    detail = (
        f"dialer {best_dial * per:.3f} ms, answerer {best_answer * per:.3f} ms of CPU a hello "
        f"(2 Ed25519 signatures and 2 verifications in all); {HANDSHAKES} hellos, best of "
        f"{REPEATS}"
    )
    name = "CPU per hello, both sides"
    return [Figure("11", SECTION, name, best_total * per, "ms", Goal("<=", 5.0), detail)]


async def _throughput(workdir: Path) -> tuple[float, float]:
    settings = Settings(network="regtest", data_dir=workdir, admin_token="bench")
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://node.bench") as client:
            headers = await hello_and_finish(client)

            async def run(bound: bool) -> float:
                if bound:
                    app.dependency_overrides.pop(p2p_routes.sender, None)
                else:
                    node_id = headers["X-Ailedger-Node"]
                    app.dependency_overrides[p2p_routes.sender] = _constant(node_id)
                start = time.perf_counter()
                for _ in range(REQUESTS):
                    response = await client.get("/p2p/peers", headers=headers)
                    assert response.status_code == 200, response.text
                return REQUESTS / (time.perf_counter() - start)

            with_rates, without_rates = [], []
            for _ in range(REPEATS):
                with_rates.append(await run(True))
                without_rates.append(await run(False))
            app.dependency_overrides.clear()
    return max(with_rates), max(without_rates)


def _constant(node_id: str) -> Callable[[], Coroutine[Any, Any, str]]:
    """The session check's stand-in: an async dependency, as the check itself is."""

    async def sender() -> str:
        return node_id

    return sender


def bench_session_throughput(workdir: Path) -> list[Figure]:
    """Figure 12: /p2p requests/s with session binding / without, in one run."""
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        bound, unbound = asyncio.run(_throughput(Path(tmp)))
    detail = (
        f"GET /p2p/peers {bound:,.0f}/s within a session, {unbound:,.0f}/s with the check "
        f"replaced by a constant; {REQUESTS} requests, best of {REPEATS}, taking turns, "
        "in-process ASGI"
    )
    name = "p2p requests/s with session binding / without"
    return [Figure("12", SECTION, name, bound / unbound, "x", Goal(">=", 0.9), detail)]
