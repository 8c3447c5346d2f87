"""ailedger benchmarks: figures against their goals. Not a test; nothing here asserts.

    scripts/bench                      every section
    scripts/bench consensus            one section (consensus, node, p2p) ...
    scripts/bench miner lineage        ... or single benchmarks by name
    scripts/bench --json out.json      also save the figures
    scripts/bench join --join-blocks 2000   a shorter chain for the join figure

Each ratio compares the project's code with a bare baseline measured in the same run on
the same machine, so a busy machine moves both sides. Node figures start real
``ailedger node`` processes on 127.0.0.1 (fresh data directories under a temporary
directory) and always end them.
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from benchlib.consensus_bench import bench_merkle, bench_solve, bench_verify
from benchlib.identity_bench import bench_handshake, bench_session_throughput
from benchlib.miner_bench import bench_miner
from benchlib.p2p_join import JOIN_BLOCKS, bench_join
from benchlib.p2p_propagation import bench_propagation
from benchlib.query_bench import bench_lineage, bench_status
from benchlib.report import Figure, render_table, write_json
from benchlib.submit_bench import bench_batch, bench_submit

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Bench:
    name: str
    section: str
    key: str
    title: str
    run: Callable[[Path], list[Figure]]


BENCHES = (
    Bench("solve", "consensus", "1", "pow.solve vs bare midstate loop", lambda _: bench_solve()),
    Bench("verify", "consensus", "2", "tx verification vs bare Ed25519", lambda _: bench_verify()),
    Bench("merkle", "consensus", "3", "Merkle root of 2,000 leaves", lambda _: bench_merkle()),
    Bench("miner", "node", "4", "Miner processes vs bare midstate loop", lambda _: bench_miner()),
    Bench("batch", "node", "5", "POST /v1/transactions/batch", bench_batch),
    Bench("submit", "node", "6", "POST /v1/transactions vs hello-world", bench_submit),
    Bench("status", "node", "7", "GET /v1/status while mining", bench_status),
    Bench("lineage", "node", "8", "lineage query on a 10k-record chain", bench_lineage),
    Bench("join", "p2p", "9", "a new node syncs a chain from one peer", bench_join),
    Bench("propagation", "p2p", "10", "block propagation, 5 nodes: line, mesh", bench_propagation),
    Bench("handshake", "identity", "11", "CPU per hello, both sides", bench_handshake),
    Bench(
        "session", "identity", "12", "p2p requests with session binding", bench_session_throughput
    ),
)
SECTIONS = tuple(dict.fromkeys(b.section for b in BENCHES))


def parse_args(argv: list[str]) -> argparse.Namespace:
    names = [*SECTIONS, *(b.name for b in BENCHES)]
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"sections or benchmarks to run (default: all): {', '.join(names)}",
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the figures here")
    parser.add_argument(
        "--join-blocks",
        type=int,
        default=JOIN_BLOCKS,
        metavar="N",
        help=f"blocks (of 10 transactions) in the join figure's chain (default {JOIN_BLOCKS:,})",
    )
    args = parser.parse_args(argv)
    if args.join_blocks < 1:
        parser.error("--join-blocks must be at least 1")
    unknown = sorted(set(args.names) - set(names))
    if unknown:
        parser.error(f"unknown name {', '.join(unknown)}; choose from {', '.join(names)}")
    return args


def selected(names: list[str]) -> list[Bench]:
    if not names:
        return list(BENCHES)
    return [b for b in BENCHES if b.name in names or b.section in names]


def configured(bench: Bench, args: argparse.Namespace) -> Bench:
    """The bench with this run's options bound (only ``join`` takes one)."""
    if bench.name == "join":
        return replace(bench, run=functools.partial(bench_join, blocks=args.join_blocks))
    return bench


def _one_line(text: str) -> str:
    """The first line of an error and its last one (for a server, its log's last line)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) > 1:
        return f"{lines[0][:200]} ... {lines[-1][:200]}"
    return lines[0][:300] if lines else "error"


def run_one(bench: Bench, workdir: Path) -> list[Figure]:
    """The bench's figures, or one ERROR row saying why it failed (the run goes on)."""
    print(f"--> [{bench.key}] {bench.title} ...", file=sys.stderr, flush=True)
    start = time.monotonic()
    try:
        figures = bench.run(workdir)
    except Exception as exc:  # a broken node must not hide the other figures
        traceback.print_exc(file=sys.stderr)
        message = _one_line(f"{type(exc).__name__}: {exc}")
        figures = [Figure(bench.key, bench.section, bench.title, None, "", error=message)]
    print(f"    done in {time.monotonic() - start:.1f} s", file=sys.stderr, flush=True)
    return figures


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "HEAD"],
            check=True,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def run_meta(benches: list[Bench], elapsed: float) -> dict[str, Any]:
    return {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "commit": git_commit(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average": list(os.getloadavg()),
        "benchmarks": [b.name for b in benches],
        "seconds": round(elapsed, 1),
    }


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    benches = [configured(b, args) for b in selected(args.names)]
    start = time.monotonic()
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="ailedger-bench-") as tmp:
        for bench in benches:
            workdir = Path(tmp) / bench.name
            workdir.mkdir()
            figures.extend(run_one(bench, workdir))
    elapsed = time.monotonic() - start
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"\nailedger bench: {len(benches)} benchmarks in {elapsed:.0f} s on "
        f"{os.cpu_count()} CPUs (load average {load})\n"
    )
    print(render_table(figures))
    if args.json is not None:
        write_json(args.json, figures, run_meta(benches, elapsed))
        print(f"\nfigures written to {args.json}")
    return 1 if any(f.status == "ERROR" for f in figures) else 0


if __name__ == "__main__":  # the miner's "spawn" workers re-import this module
    sys.exit(main(sys.argv[1:]))
