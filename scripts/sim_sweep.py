"""Sweep the simulator over block interval x latency, and calibrate it on a 5-node line.

Each cell is one ``ailedger simulate`` run (no join, no partition) with the other
settings at their defaults. The table gives the propagation (median over blocks of the
time until 50/90/99 % of the nodes held a block), the stale rate, and the stale rate
Decker and Wattenhofer's model predicts from the mean delay ``t`` over the nodes and the
interval ``T``: 1 - exp(-t/T).

The calibration runs the line of ``scripts/bench propagation`` (n1-n2-n3-n4-n5, each
node's only peer its predecessor, empty blocks mined on n1, loopback links) and compares
its time until the last node held a block with the real 5-process figure.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from node.sim import LinkModel, SimConfig, Simulation, to_json

INTERVALS_S = (1.0, 2.0, 5.0, 10.0, 30.0)
LATENCIES_MS = (50.0, 100.0, 300.0)
REAL_LINE_P50_MS = 28.8
"""``scripts/bench propagation`` 10a on this machine (2026-12-05; the brief's earlier
measurement: 21.9 ms). Its real nodes spent 35 ms of CPU per block, 7 ms a node: the
simulator's default ``block_us``."""


def sweep(nodes: int, blocks: int, seed: int) -> list[dict[str, float]]:
    rows = []
    for interval in INTERVALS_S:
        for latency in LATENCIES_MS:
            config = SimConfig(
                nodes=nodes,
                seed=seed,
                links=LinkModel(latency_ms=latency),
                block_interval_s=interval,
                blocks=blocks,
                partition_s=0,
                join=False,
            )
            started = time.perf_counter()
            summary = to_json(config, Simulation(config).run())["summary"]
            rows.append(
                {
                    "interval_s": interval,
                    "latency_ms": latency,
                    "reach_50_ms": summary["reach_ms"]["50"],
                    "reach_90_ms": summary["reach_ms"]["90"],
                    "reach_99_ms": summary["reach_ms"]["99"],
                    "mean_delay_ms": summary["mean_delay_ms"],
                    "stale_rate": summary["stale_rate"],
                    "model_stale_rate": summary["model_stale_rate"],
                    "wall_s": round(time.perf_counter() - started, 1),
                }
            )
            print(_row(rows[-1]), flush=True)
    return rows


def calibrate(seed: int) -> dict[str, float]:
    config = SimConfig(
        nodes=5,
        seed=seed,
        links=LinkModel(latency_ms=0.05, jitter_ms=0.0, bandwidth_mbit=10_000.0),
        block_interval_s=1.0,
        txs_per_block=0,
        blocks=50,
        partition_s=0,
        join=False,
        line=True,
    )
    summary = to_json(config, Simulation(config).run())["summary"]
    simulated = summary["reach_ms"]["99"]  # 5 nodes: the 5th, the last one
    return {
        "simulated_line_p50_ms": simulated,
        "real_line_p50_ms": REAL_LINE_P50_MS,
        "factor": round(max(simulated, REAL_LINE_P50_MS) / min(simulated, REAL_LINE_P50_MS), 2),
        "block_cpu_ms": config.costs.block_us / 1000,
    }


HEADER = (
    "| interval s | latency ms | reach 50 % ms | 90 % ms | 99 % ms | mean delay ms "
    "| stale rate | D-W model |\n|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def _row(r: dict[str, float]) -> str:
    return (
        f"| {r['interval_s']:g} | {r['latency_ms']:g} | {r['reach_50_ms']:.0f} "
        f"| {r['reach_90_ms']:.0f} | {r['reach_99_ms']:.0f} | {r['mean_delay_ms']:.0f} "
        f"| {r['stale_rate'] * 100:.1f} % | {r['model_stale_rate'] * 100:.1f} % |"
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--blocks", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the rows here")
    args = parser.parse_args(argv)
    if args.nodes < 2 or args.blocks < 1:
        parser.error("--nodes must be >= 2 and --blocks >= 1")
    cal = calibrate(args.seed)
    print(
        f"calibration, 5-node line: simulated {cal['simulated_line_p50_ms']:.1f} ms, real "
        f"{cal['real_line_p50_ms']:.1f} ms (p50 until the last node): factor {cal['factor']}"
    )
    print(f"\nsweep: {args.nodes} nodes, {args.blocks} blocks a cell, seed {args.seed}\n")
    print(HEADER, flush=True)
    rows = sweep(args.nodes, args.blocks, args.seed)
    if args.json is not None:
        args.json.write_text(json.dumps({"calibration": cal, "sweep": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
