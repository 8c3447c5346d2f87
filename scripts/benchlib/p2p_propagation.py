"""Figure 10: how long a new block takes to reach every node of a 5-node network.

Two regtest topologies on 127.0.0.1: a LINE (n1-n2-n3-n4-n5, each node's only seed is
its predecessor, and ``AILEDGER_MAX_OUTBOUND=1`` so that peer discovery cannot add
shortcuts) and a MESH (each node seeds every earlier one; a handshake links both ways).
Blocks are mined one at a time on n1 with ``POST /v1/admin/mine``; the clock starts when
that call returns (n1 has accepted the block and queued it for its peers) and stops when
the last of n2..n5 shows the block as its ``best_hash`` in ``GET /v1/status``.

The nodes log nothing per block, so each of n2..n5 is polled by a coroutine of its own
(``benchlib.probe``: a bare keep-alive GET, cheap enough not to be the bottleneck): a
request, then ``POLL_GAP_S`` of sleep, until the node has the block. A time is thus
late by at most one poll cycle (request round trip plus the gap; its median is in the
figure's detail): that is the resolution. The blocks are empty: this is the relay path.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from benchlib.probe import Probe
from benchlib.procs import ADMIN_TOKEN, Server, node_server
from benchlib.report import Figure, Goal
from benchlib.timing import percentile

__all__ = ["bench_propagation"]

SECTION = "p2p"
NODES = 5
BLOCKS = 50
WARMUP_BLOCKS = 3
POLL_GAP_S = 0.002
BLOCK_TIMEOUT_S = 10.0
"""A block that has not reached every node by then counts as this late (and is named)."""
PAUSE_S = 0.1
"""Between blocks: lets the mesh's duplicate pushes of the last block die down."""
CONNECT_TIMEOUT_S = 60.0
GOAL_P50 = Goal("<=", 100)
GOAL_P99 = Goal("<=", 500)


@dataclass(frozen=True)
class Topology:
    name: str
    env: dict[str, str]

    def seeds(self, index: int, urls: Sequence[str]) -> list[str]:
        """The ``--peer`` URLs of node ``index`` (0-based), given the earlier nodes' URLs."""
        if self.name == "line":
            return list(urls[index - 1 : index])
        return list(urls[:index])

    def expected_peers(self, index: int) -> int:
        if self.name == "line":
            return 1 if index in (0, NODES - 1) else 2
        return NODES - 1


LINE = Topology("line", {"AILEDGER_MAX_OUTBOUND": "1"})
MESH = Topology("mesh", {})


@dataclass
class Samples:
    """Per block: ms until the last node had it; per node: ms until that node had it."""

    last: list[float] = field(default_factory=list)
    by_node: list[list[float]] = field(default_factory=lambda: [[] for _ in range(NODES - 1)])
    cycles: list[float] = field(default_factory=list)
    """Poll cycles in ms: the resolution of every sample."""
    late: int = 0
    cpu_ms: float | None = None
    """CPU of all five nodes per measured block (answering the polls included)."""


async def _first_seen(probe: Probe, block_hash: str, start: float, cycles: list[float]) -> float:
    """Seconds after ``start`` when the node first answered with ``block_hash`` as its tip."""
    deadline = start + BLOCK_TIMEOUT_S
    last = start
    while True:
        status = await probe.get_json("/v1/status")
        now = time.perf_counter()
        cycles.append((now - last) * 1000)
        last = now
        if status["best_hash"] == block_hash:
            return now - start
        if now > deadline:
            return BLOCK_TIMEOUT_S
        await asyncio.sleep(POLL_GAP_S)


async def _one_block(
    miner: httpx.AsyncClient, others: list[Probe], samples: Samples | None
) -> None:
    answer = await miner.post("/v1/admin/mine", json={"blocks": 1})
    block_hash = answer.raise_for_status().json()["hashes"][0]
    start = time.perf_counter()
    cycles: list[float] = []
    seen = await asyncio.gather(*(_first_seen(c, block_hash, start, cycles) for c in others))
    if samples is None:
        return
    samples.last.append(max(seen) * 1000)
    samples.late += sum(1 for s in seen if s >= BLOCK_TIMEOUT_S)
    for node, seconds in enumerate(seen):
        samples.by_node[node].append(seconds * 1000)
    samples.cycles.extend(cycles[len(others) :])  # the first poll of each is not a cycle


async def _measure(servers: list[Server]) -> Samples:
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    samples = Samples()
    async with contextlib.AsyncExitStack() as stack:
        miner = await stack.enter_async_context(
            httpx.AsyncClient(base_url=servers[0].url, timeout=10.0, headers=auth)
        )
        others = [await stack.enter_async_context(Probe(s.url)) for s in servers[1:]]
        for i in range(WARMUP_BLOCKS + BLOCKS):
            await _one_block(miner, others, samples if i >= WARMUP_BLOCKS else None)
            await asyncio.sleep(PAUSE_S)
    return samples


def _wait_connected(servers: list[Server], topology: Topology) -> None:
    """Until every node has exactly its topology's number of connected peers."""
    deadline = time.monotonic() + CONNECT_TIMEOUT_S
    with contextlib.ExitStack() as stack:
        clients = [stack.enter_context(s.client(timeout=5.0)) for s in servers]
        while True:
            counts = [c.get("/v1/status").raise_for_status().json()["peers"] for c in clients]
            wanted = [topology.expected_peers(i) for i in range(NODES)]
            if counts == wanted:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topology.name}: peers per node {counts}, wanted {wanted}")
            time.sleep(0.2)


def run_topology(workdir: Path, topology: Topology) -> Samples:
    """Start the 5 nodes in order (each seeds from earlier ones), then mine and watch."""
    with contextlib.ExitStack() as stack:
        servers: list[Server] = []
        for i in range(NODES):
            seeds = topology.seeds(i, [s.url for s in servers])
            args = [arg for url in seeds for arg in ("--peer", url)]
            name = f"{topology.name}-n{i + 1}"
            servers.append(
                stack.enter_context(node_server(workdir, name, args=args, env=topology.env))
            )
        _wait_connected(servers, topology)
        cpu_before = _total_cpu(servers)
        samples = asyncio.run(_measure(servers))
        cpu_after = _total_cpu(servers)
    if cpu_before is not None and cpu_after is not None:
        samples.cpu_ms = (cpu_after - cpu_before) * 1000 / (WARMUP_BLOCKS + BLOCKS)
    return samples


def _total_cpu(servers: list[Server]) -> float | None:
    times = [s.cpu_seconds() for s in servers]
    return None if None in times else sum(t for t in times if t is not None)


def _figures(keys: tuple[str, str], topology: Topology, samples: Samples) -> list[Figure]:
    p50, p99 = percentile(samples.last, 0.50), percentile(samples.last, 0.99)
    by_node = ", ".join(
        f"n{i + 2} {statistics.median(times):.0f}" for i, times in enumerate(samples.by_node)
    )
    cycle = statistics.median(samples.cycles) if samples.cycles else float("nan")
    late = f"; {samples.late} arrivals later than {BLOCK_TIMEOUT_S:.0f} s" if samples.late else ""
    cpu = "?" if samples.cpu_ms is None else f"{samples.cpu_ms:.0f}"
    detail = (
        f"{len(samples.last)} empty blocks mined one at a time on n1; max {max(samples.last):.0f} "
        f"ms; median ms until each node had a block: {by_node}{late}\n"
        f"CPU of the 5 nodes per block: {cpu} ms (answering the polls included)\n"
        f"resolution: one poll cycle of /v1/status, median {cycle:.1f} ms "
        f"(round trip + {POLL_GAP_S * 1000:.0f} ms gap); p99 is the nearest rank: of "
        f"{len(samples.last)} samples, the largest"
    )
    name = f"block to all 5 nodes, {topology.name}"
    return [
        Figure(keys[0], SECTION, f"{name}: p50", p50, "ms", GOAL_P50, detail),
        Figure(keys[1], SECTION, f"{name}: p99", p99, "ms", GOAL_P99),
    ]


def bench_propagation(workdir: Path) -> list[Figure]:
    """Figure 10: p50 and p99 of block propagation over a 5-node line and a 5-node mesh."""
    line = run_topology(workdir, LINE)
    mesh = run_topology(workdir, MESH)
    return [*_figures(("10a", "10b"), LINE, line), *_figures(("10c", "10d"), MESH, mesh)]
