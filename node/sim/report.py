"""The simulator's output: the ``--json`` document (design §14) and the human summary.

``summary`` holds the normative keys (``nodes``, ``blocks``, ``reach_ms`` with "50",
"90", "99", ``stale_rate``, ``bytes_per_node_per_block``) and more; ``abstracted`` says
what did not run for real. Nothing here reads a clock or iterates an unordered set, so
the same seed gives the same bytes.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from typing import Any

from node.sim.runner import Outcome, SimConfig

__all__ = ["ABSTRACTED", "dumps", "model_stale_rate", "to_json", "to_text"]

ABSTRACTED = [
    "proof-of-work search: blocks come as a Poisson process (exponential gaps), each found "
    "by a miner chosen by hash-power share; headers are real regtest headers whose nonce "
    "really meets the target",
    "transactions: each block holds synthetic leaves of a real signed transaction's size; "
    "signature checks and ledger rules are not run, their CPU time is charged per transaction",
    "storage (SQLite) and the chain worker: the fork choice is consensus.chain.BlockTree in "
    "memory, with the real header checks; CPU time per block is a calibrated constant",
    "HTTP and TCP: each request/answer is one message of its real size on a link with "
    "latency, jitter and per-link bandwidth (no shared uplink, no congestion control); a lost "
    "message fails its request after the client's timeout",
    "storage of the address book (the core's Persist and Forget) and transaction gossip: "
    "only blocks are relayed",
    "adversaries: every node is honest",
]


STAND_IN_SIGNATURES = (
    "hello signatures: a keyed SHA-512 stands in for Ed25519 and the core's verify_hello "
    "checks it for the run (--real-signatures runs Ed25519); the measured Ed25519 CPU time "
    "is charged"
)


def abstracted(config: SimConfig) -> list[str]:
    """What this run did not run for real."""
    return ABSTRACTED if config.real_signatures else [*ABSTRACTED, STAND_IN_SIGNATURES]


def to_json(config: SimConfig, outcome: Outcome) -> dict[str, Any]:
    stale_rate = outcome.stale / outcome.blocks if outcome.blocks else 0.0
    links = config.links
    return {
        "summary": {
            "nodes": config.nodes,
            "blocks": outcome.blocks,
            "reach_ms": {k: outcome.reach_median[k] for k in ("50", "90", "99")},
            "reach_ms_p90": {k: outcome.reach_p90[k] for k in ("50", "90", "99")},
            "mean_delay_ms": outcome.reach_median["mean"],
            "model_stale_rate": round(model_stale_rate(outcome.reach_median["mean"], config), 5),
            "stale_rate": round(stale_rate, 5),
            "stale_blocks": outcome.stale,
            "bytes_per_node_per_block": outcome.bytes_per_node_per_block,
            "converged": outcome.converged,
            "join_ms": outcome.join_ms,
            "partition": {
                "seconds": config.partition_s,
                "blocks": outcome.partition_blocks,
                "orphaned": outcome.orphaned,
                "heal_ms": outcome.heal_ms,
            },
            "discouraged": outcome.discouraged,
        },
        "config": {
            "nodes": config.nodes,
            "seed": config.seed,
            "outbound": config.outbound,
            "max_inbound": config.max_inbound,
            "latency_ms": links.latency_ms,
            "jitter_ms": links.jitter_ms,
            "bandwidth_mbit": links.bandwidth_mbit,
            "loss": links.loss,
            "block_interval_s": config.block_interval_s,
            "txs_per_block": config.txs_per_block,
            "blocks": config.blocks,
            "miners": config.miners,
            "real_signatures": config.real_signatures,
            "costs_us": asdict(config.costs),
        },
        "run": {"events": outcome.events, "simulated_s": outcome.sim_seconds},
        "abstracted": abstracted(config),
    }


def model_stale_rate(mean_delay_ms: float, config: SimConfig) -> float:
    """Decker and Wattenhofer's model: a competing block is found while the nodes still
    lack this one with probability 1 - exp(-t / T), t the mean delay, T the interval."""
    return 1 - math.exp(-mean_delay_ms / 1000 / config.block_interval_s)


def dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def to_text(document: dict[str, Any]) -> str:
    s = document["summary"]
    reach, reach90 = s["reach_ms"], s["reach_ms_p90"]
    part = s["partition"]
    lines = [
        f"{s['nodes']} nodes, {s['blocks']} blocks "
        f"({document['run']['simulated_s']:.0f} s simulated, {document['run']['events']} events)",
        "block reach, ms (median over blocks / p90): "
        + ", ".join(f"{k} % {reach[k]:.0f} / {reach90[k]:.0f}" for k in ("50", "90", "99")),
        f"stale rate: {s['stale_rate'] * 100:.2f} % ({s['stale_blocks']} of {s['blocks']}); "
        f"Decker-Wattenhofer model from the mean delay of {s['mean_delay_ms']:.0f} ms: "
        f"{s['model_stale_rate'] * 100:.2f} %",
        f"bytes sent per node per block: {s['bytes_per_node_per_block']:.0f}",
        f"one tip at the end: {'yes' if s['converged'] else 'NO'}; "
        f"discouraged peers: {s['discouraged']}",
    ]
    if "join_ms" in s:
        lines.append(f"new node joined and synced in: {_ms(s['join_ms'])}")
    if part["seconds"]:
        lines.append(
            f"50/50 partition for {part['seconds']:.0f} s: {part['blocks']} blocks mined, "
            f"{part['orphaned']} orphaned; heal to one tip in {_ms(part['heal_ms'])}"
        )
    lines.append("abstracted (not run for real):")
    lines.extend(f"  - {item}" for item in document["abstracted"])
    return "\n".join(lines) + "\n"


def _ms(value: float | None) -> str:
    return "did not happen within the limit" if value is None else f"{value:.0f} ms"
