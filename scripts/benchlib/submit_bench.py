"""Figures 5 and 6: accepting transactions through a real node's REST API."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx

from benchlib.baselines import bare_verify_rate
from benchlib.load import post_all
from benchlib.procs import hello_server, node_server
from benchlib.report import Figure, Goal
from benchlib.txs import TxFactory, body_bytes, message_of
from consensus.tx import Transaction

__all__ = ["bench_batch", "bench_submit"]

SECTION = "node"
BATCH_SIZE = 500
BATCH_TOTAL = 4_000
SUBMIT_TOTAL = 3_000
WARMUP = 100
CONCURRENCY = 16
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


def bench_batch(workdir: Path) -> list[Figure]:
    """Figure 5: accepted tx/s through ``POST /v1/transactions/batch`` ÷ bare verify/s."""
    factory = TxFactory()
    warmup = _batch_bodies(factory.datasets(BATCH_SIZE, "batch-warmup"))
    txs = factory.datasets(BATCH_TOTAL, "batch")
    bodies = _batch_bodies(txs)
    with node_server(workdir, "batch") as node, node.client() as client:
        _post_batches(client, warmup)
        accepted, others, elapsed = _post_batches(client, bodies)
    rate = accepted / elapsed
    bare = bare_verify_rate(len(message_of(txs[0])), VERIFY_COUNT)
    detail = (
        f"{accepted:,} accepted ({others} not) in {elapsed:.2f} s = {rate:,.0f} tx/s in "
        f"batches of {BATCH_SIZE}; bare verify {bare:,.0f}/s"
    )
    return [
        Figure(
            "5",
            SECTION,
            "batch accepted tx/s / bare Ed25519 verify/s",
            rate / bare,
            "x",
            Goal(">=", 0.6),
            detail,
        )
    ]


def bench_submit(workdir: Path) -> list[Figure]:
    """Figure 6: single ``POST /v1/transactions`` req/s ÷ a hello-world endpoint's req/s."""
    factory = TxFactory()
    warmup = [body_bytes(tx) for tx in factory.datasets(WARMUP, "submit-warmup")]
    bodies = [body_bytes(tx) for tx in factory.datasets(SUBMIT_TOTAL, "submit")]
    with node_server(workdir, "submit") as node:
        post_all(node.url, "/v1/transactions", warmup, concurrency=CONCURRENCY)
        node_load = post_all(node.url, "/v1/transactions", bodies, concurrency=CONCURRENCY)
    with hello_server(workdir) as hello:
        post_all(hello.url, "/hello", warmup, concurrency=CONCURRENCY)
        hello_load = post_all(hello.url, "/hello", bodies, concurrency=CONCURRENCY)
    node_rate, hello_rate = node_load.rate(202), hello_load.rate(202)
    detail = (
        f"node {node_rate:,.0f} req/s ({node_load.summary()}), hello-world {hello_rate:,.0f} "
        f"req/s ({hello_load.summary()}); httpx asyncio, concurrency {CONCURRENCY}"
    )
    return [
        Figure(
            "6",
            SECTION,
            "POST /v1/transactions req/s / hello-world req/s",
            node_rate / hello_rate,
            "x",
            Goal(">=", 0.35),
            detail,
        )
    ]
