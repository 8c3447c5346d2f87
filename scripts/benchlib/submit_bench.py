"""Figures 5 and 6: accepting transactions through a real node's REST API."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from benchlib.baselines import bare_verify_rate, bare_verify_run
from benchlib.load import LoadResult, post_all
from benchlib.procs import Server, hello_server, node_server
from benchlib.report import Figure, Goal
from benchlib.timing import best_rate
from benchlib.txs import TxFactory, body_bytes, message_of
from consensus.tx import Transaction

__all__ = ["bench_batch", "bench_submit"]

SECTION = "node"
BATCH_SIZE = 500
BATCH_TOTAL = 4_000
SUBMIT_TOTAL = 3_000
WARMUP = 100
CONCURRENCY = 16
MAX_LOAD_SECONDS = 25.0
"""Per server: on a busy machine fewer than ``SUBMIT_TOTAL`` requests go out, not more time."""
VERIFY_COUNT = 2_000


def _batch_bodies(txs: list[Transaction]) -> list[bytes]:
    return [
        json.dumps({"transactions": [tx.to_json() for tx in txs[i : i + BATCH_SIZE]]}).encode()
        for i in range(0, len(txs), BATCH_SIZE)
    ]


def _post_batches(client: httpx.Client, bodies: list[bytes]) -> tuple[int, int, float]:
    """POST the batches one after another: (accepted, other outcomes, seconds)."""
    accepted = others = 0
    start = time.perf_counter()
    for body in bodies:
        response = client.post(
            "/v1/transactions/batch", content=body, headers={"content-type": "application/json"}
        )
        response.raise_for_status()
        for result in response.json()["results"]:
            if result["status"] == "accepted":
                accepted += 1
            else:
                others += 1
    return accepted, others, time.perf_counter() - start


def _cpu_note(node_cpu: float, accepted: int, message_len: int) -> str:
    """The figure by CPU time instead of wall time: what a busy machine does not blur."""
    bare_run = bare_verify_run(message_len, VERIFY_COUNT)
    bare_cpu = best_rate(bare_run, VERIFY_COUNT, clock=time.process_time)
    per_tx = node_cpu / accepted
    return (
        f"by CPU: node {per_tx * 1000:.3f} ms per accepted tx, bare verify "
        f"{1000 / bare_cpu:.3f} ms: ratio {1 / (per_tx * bare_cpu):.2f}"
    )


def bench_batch(workdir: Path) -> list[Figure]:
    """Figure 5: accepted tx/s through ``POST /v1/transactions/batch`` ÷ bare verify/s."""
    factory = TxFactory()
    warmup = _batch_bodies(factory.datasets(BATCH_SIZE, "batch-warmup"))
    txs = factory.datasets(BATCH_TOTAL, "batch")
    bodies = _batch_bodies(txs)
    with node_server(workdir, "batch") as node, node.client() as client:
        _post_batches(client, warmup)
        cpu_before = node.cpu_seconds()
        accepted, others, elapsed = _post_batches(client, bodies)
        cpu_after = node.cpu_seconds()
    rate = accepted / elapsed
    bare = bare_verify_rate(len(message_of(txs[0])), VERIFY_COUNT)
    detail = (
        f"{accepted:,} accepted ({others} not) in {elapsed:.2f} s = {rate:,.0f} tx/s in "
        f"batches of {BATCH_SIZE}; bare verify {bare:,.0f}/s"
    )
    if cpu_before is not None and cpu_after is not None and accepted:
        detail += "\n" + _cpu_note(cpu_after - cpu_before, accepted, len(message_of(txs[0])))
    name = "batch accepted tx/s / bare Ed25519 verify/s"
    return [Figure("5", SECTION, name, rate / bare, "x", Goal(">=", 0.6), detail)]


@dataclass(frozen=True)
class Served:
    """A load run against one server, with the CPU time each side spent per request."""

    load: LoadResult
    server_cpu_ms: float | None

    def describe(self, name: str) -> str:
        server = "?" if self.server_cpu_ms is None else f"{self.server_cpu_ms:.2f}"
        return (
            f"{name}: {self.load.rate(202):,.0f} req/s ({self.load.summary()}); CPU per request: "
            f"server {server} ms, client {self.load.client_cpu_ms:.2f} ms"
        )


def _serve_load(server: Server, path: str, warmup: list[bytes], bodies: list[bytes]) -> Served:
    post_all(server.url, path, warmup, concurrency=CONCURRENCY)
    cpu_before = server.cpu_seconds()
    load = post_all(server.url, path, bodies, concurrency=CONCURRENCY, max_seconds=MAX_LOAD_SECONDS)
    cpu_after = server.cpu_seconds()
    if cpu_before is None or cpu_after is None or not load.count:
        return Served(load, None)
    return Served(load, (cpu_after - cpu_before) * 1000 / load.count)


def bench_submit(workdir: Path) -> list[Figure]:
    """Figure 6: single ``POST /v1/transactions`` req/s ÷ a hello-world endpoint's req/s."""
    factory = TxFactory()
    warmup = [body_bytes(tx) for tx in factory.datasets(WARMUP, "submit-warmup")]
    bodies = [body_bytes(tx) for tx in factory.datasets(SUBMIT_TOTAL, "submit")]
    with node_server(workdir, "submit") as node:
        on_node = _serve_load(node, "/v1/transactions", warmup, bodies)
    with hello_server(workdir) as hello:
        on_hello = _serve_load(hello, "/hello", warmup, bodies)
    detail = (
        f"{on_node.describe('node')}\n{on_hello.describe('hello-world')}\n"
        f"up to {SUBMIT_TOTAL:,} bodies each, httpx asyncio client, concurrency {CONCURRENCY}"
    )
    ratio = on_node.load.rate(202) / on_hello.load.rate(202)
    name = "POST /v1/transactions req/s / hello-world req/s"
    return [
        Figure("6", SECTION, name, ratio, "x", Goal(">=", 0.35), detail),
        _cpu_figure(on_node, on_hello),
    ]


def _cpu_figure(on_node: Served, on_hello: Served) -> Figure:
    """Figure 6b: the same comparison by server CPU per request, which a client that
    cannot saturate either server does not blur."""
    name = "server CPU/request: hello-world / node"
    if on_node.server_cpu_ms is None or on_hello.server_cpu_ms is None:
        return Figure("6b", SECTION, name, None, "x", error="no /proc: CPU time unknown")
    ratio = on_hello.server_cpu_ms / on_node.server_cpu_ms if on_node.server_cpu_ms else 0.0
    detail = "what figure 6 would be if each server, not the client, set the pace"
    return Figure("6b", SECTION, name, ratio, "x", None, detail)
