"""Figures 7 and 8: read latency of a real node, while it mines and on a deep lineage."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import httpx

from benchlib.procs import node_server
from benchlib.report import Figure, Goal
from benchlib.timing import percentile
from benchlib.txs import TxFactory
from consensus.tx import Transaction

__all__ = ["bench_lineage", "bench_status"]

SECTION = "node"
STATUS_SAMPLES = 2_000
STATUS_WARMUP = 50
MINING_TIMEOUT = 30.0
LINEAGE_BLOCKS = 100
LINEAGE_PER_BLOCK = 100
LINEAGE_REPEATS = 20


def _height(client: httpx.Client) -> int:
    height: int = client.get("/v1/status").raise_for_status().json()["height"]
    return height


def _wait_for_blocks(client: httpx.Client, height: int) -> None:
    """Wait until the background miner has found a block or two: it is really running."""
    deadline = time.monotonic() + MINING_TIMEOUT
    while _height(client) < height:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the node mined fewer than {height} blocks in {MINING_TIMEOUT} s")
        time.sleep(0.1)


def _status_latencies(client: httpx.Client, count: int) -> list[float]:
    """Milliseconds of ``count`` sequential ``GET /v1/status`` calls."""
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        client.get("/v1/status").raise_for_status()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def bench_status(workdir: Path) -> list[Figure]:
    """Figure 7: p99 (and p50) of ``GET /v1/status`` while the background miner runs."""
    with node_server(workdir, "status", args=["--mine"]) as node, node.client() as client:
        _wait_for_blocks(client, 2)
        _status_latencies(client, STATUS_WARMUP)
        first = _height(client)
        start = time.monotonic()
        samples = _status_latencies(client, STATUS_SAMPLES)
        elapsed = time.monotonic() - start
        mined = _height(client) - first
    p50, p99 = percentile(samples, 0.50), percentile(samples, 0.99)
    detail = (
        f"p50 {p50:.1f} ms, max {max(samples):.1f} ms; {STATUS_SAMPLES:,} sequential requests "
        f"in {elapsed:.1f} s while regtest --mine found {mined:,} blocks"
    )
    return [
        Figure("7", SECTION, "GET /v1/status p99 while mining", p99, "ms", Goal("<=", 25), detail),
        Figure("7b", SECTION, "GET /v1/status p50 while mining", p50, "ms"),
    ]


def _lineage_blocks(factory: TxFactory) -> list[list[Transaction]]:
    """``LINEAGE_BLOCKS`` blocks of records; the first of each derives from the previous
    block's first: a chain of depth ``LINEAGE_BLOCKS`` among the fillers."""
    blocks: list[list[Transaction]] = []
    parent: list[str] = []
    for b in range(LINEAGE_BLOCKS):
        chain = factory.dataset(f"chain-{b}", derived_from=parent)
        fillers = factory.datasets(LINEAGE_PER_BLOCK - 1, f"filler-{b}")
        blocks.append([chain, *fillers])
        parent = [chain.txid]
    return blocks


def _confirm_block(client: httpx.Client, txs: list[Transaction]) -> None:
    """Submit one block's records in a batch and mine them into a block."""
    body = {"transactions": [tx.to_json() for tx in txs]}
    results = client.post("/v1/transactions/batch", json=body).raise_for_status().json()
    refused = [r for r in results["results"] if r["status"] != "accepted"]
    if refused:
        raise RuntimeError(f"{len(refused)} records refused, first: {refused[0]}")
    client.post("/v1/admin/mine", json={"blocks": 1}).raise_for_status()


def _lineage(client: httpx.Client, txid: str) -> dict[str, Any]:
    path = f"/v1/records/{txid}/lineage?direction=ancestors&depth={LINEAGE_BLOCKS}"
    graph: dict[str, Any] = client.get(path).raise_for_status().json()
    return graph


def _lineage_ms(client: httpx.Client, txid: str) -> tuple[float, int]:
    """Median milliseconds of the ancestors query, and how many nodes it returned."""
    samples = []
    nodes = 0
    for _ in range(LINEAGE_REPEATS):
        start = time.perf_counter()
        nodes = len(_lineage(client, txid)["nodes"])
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples), nodes


def bench_lineage(workdir: Path) -> list[Figure]:
    """Figure 8: ancestors of depth 100 on a 10,000-record chain, built through the API."""
    blocks = _lineage_blocks(TxFactory())
    last = blocks[-1][0].txid
    with node_server(workdir, "lineage") as node, node.client() as client:
        start = time.monotonic()
        for txs in blocks:
            _confirm_block(client, txs)
        built = time.monotonic() - start
        _lineage(client, last)  # warm-up
        median, nodes = _lineage_ms(client, last)
    records = LINEAGE_BLOCKS * LINEAGE_PER_BLOCK
    detail = (
        f"{nodes} nodes returned; median of {LINEAGE_REPEATS}; chain of {records:,} records "
        f"built in {built:.1f} s ({records / built:,.0f} records/s submitted and mined)"
    )
    return [
        Figure(
            "8",
            SECTION,
            "lineage ancestors depth=100, 10k records",
            median,
            "ms",
            Goal("<=", 50),
            detail,
        )
    ]
