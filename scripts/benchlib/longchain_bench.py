"""Figure 22: a node on a long chain — memory per block, restart time, disk per block.

A synthetic regtest store of 100,000 and then 1,000,000 valid blocks is written row by row
(``benchlib.synthetic_chain``); a real node is started on it and timed until ``/healthz``
answers, then the resident memory of its whole process tree is read once it has settled.
Bytes per block resident = (that RSS - the RSS of a fresh node's tree, measured the same
way) / blocks. Goals (issue 13): at most 300 bytes a block, and at 1,000,000 blocks a
restart within 5 s and a tree within 500 MB.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from benchlib.procs import Server, node_server, tree_rss_bytes
from benchlib.report import Figure, Goal
from benchlib.synthetic_chain import build_store

__all__ = ["LONGCHAIN_SIZES", "bench_longchain"]

SECTION = "longchain"
LONGCHAIN_SIZES = (100_000, 1_000_000)
SETTLE_S = 3.0
"""How long a started node runs before its memory is read (its worker processes start)."""
MB = 1_000_000


@dataclass(frozen=True)
class Run:
    blocks: int
    restart_s: float
    rss: int
    disk: int


def _settled_rss(server: Server) -> int:
    time.sleep(SETTLE_S)
    with server.client() as client:
        client.get("/v1/status").raise_for_status()
    rss = tree_rss_bytes(server.process.pid)
    if rss is None:
        raise RuntimeError("cannot read the node's memory (no /proc?)")
    return rss


def _run(workdir: Path, blocks: int) -> Run:
    name = f"chain-{blocks}"
    data_dir = workdir / name
    db = build_store(data_dir, blocks)
    disk = sum(p.stat().st_size for p in data_dir.iterdir() if p.name.startswith(db.name))
    start = time.monotonic()
    with node_server(workdir, name, reuse=True) as node:
        restart_s = time.monotonic() - start
        with node.client() as client:
            status = client.get("/v1/status").raise_for_status().json()
        if status["height"] != blocks:
            raise RuntimeError(f"the node loaded height {status['height']}, not {blocks}")
        rss = _settled_rss(node)
    db.unlink()  # a million blocks take most of a gigabyte
    return Run(blocks, restart_s, rss, disk)


def bench_longchain(workdir: Path, sizes: tuple[int, ...] = LONGCHAIN_SIZES) -> list[Figure]:
    with node_server(workdir, "fresh") as fresh:
        base = _settled_rss(fresh)
    runs = [_run(workdir, blocks) for blocks in sizes]
    figures: list[Figure] = []
    for index, run in enumerate(runs):
        key = f"22{'abcdefgh'[index]}"
        per_block = (run.rss - base) / run.blocks
        label = f"{run.blocks:,} blocks"
        detail = (
            f"tree RSS {run.rss / MB:,.0f} MB (fresh node {base / MB:,.0f} MB);"
            f" restart {run.restart_s:.2f} s; disk {run.disk / MB:,.0f} MB"
            f" = {run.disk / run.blocks:,.0f} bytes a block"
        )
        big = run.blocks >= 1_000_000
        figures += [
            Figure(
                key,
                SECTION,
                f"resident bytes a block, {label}",
                per_block,
                "B",
                Goal("<=", 300),
                detail,
            ),
            Figure(
                key + "2",
                SECTION,
                f"restart to /healthz, {label}",
                run.restart_s,
                "s",
                Goal("<=", 5) if big else None,
            ),
            Figure(
                key + "3",
                SECTION,
                f"process tree RSS, {label}",
                run.rss / MB,
                "MB",
                Goal("<=", 500) if big else None,
            ),
            Figure(key + "4", SECTION, f"disk bytes a block, {label}", run.disk / run.blocks, "B"),
        ]
    if len(runs) > 1:
        first, last = runs[0], runs[-1]
        growth = (
            f"from {first.blocks:,} to {last.blocks:,} blocks ({last.blocks / first.blocks:g}x):"
            f" RSS {last.rss / first.rss:.2f}x, restart {last.restart_s / first.restart_s:.2f}x,"
            f" disk {last.disk / first.disk:.2f}x"
        )
        figures.append(Figure("22z", SECTION, "growth", last.rss / first.rss, "x", None, growth))
    return figures
