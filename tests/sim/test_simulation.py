"""The network simulator: deterministic, convergent, and driving the node's own code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

import consensus.chain
import node.p2p.headersync
import node.p2p.identity
import node.p2p.peers
import node.p2p.policy
import node.p2p.protocol
import node.p2p.service
import node.p2p.sync
import node.sim.syncing
from node.cli import app
from node.sim import LinkModel, SimConfig, Simulation, dumps, to_json

ROOT = Path(__file__).resolve().parents[2]

# 50 nodes, 1 s blocks with 20 ms links: a few seconds of CPU, and stale blocks do happen.
SMALL = SimConfig(
    nodes=50,
    seed=7,
    links=LinkModel(latency_ms=20.0, jitter_ms=5.0),
    block_interval_s=1.0,
    txs_per_block=20,
    blocks=40,
    miners=10,
    partition_s=60.0,
)


@pytest.fixture(scope="module")
def run() -> tuple[Simulation, dict[str, object]]:
    sim = Simulation(SMALL)
    document = to_json(SMALL, sim.run())
    return sim, document


def _most_work_tip(sim: Simulation) -> str:
    best = max(
        (e for n in sim.nodes for e in n.chain.tree.tips()), key=lambda e: (e.chain_work, e.hash)
    )
    return best.hash


def test_every_node_ends_on_the_same_most_work_tip(run: tuple[Simulation, dict]) -> None:
    sim, document = run
    tips = {n.chain.tip.hash for n in sim.nodes}
    assert tips == {sim.nodes[0].chain.tip.hash}
    heights = {n.chain.tip.height for n in sim.nodes}
    assert heights.pop() > SMALL.blocks // 2
    assert sim.nodes[0].chain.tip.chain_work == max(
        e.chain_work for n in sim.nodes for e in n.chain.tree.tips()
    )
    assert document["summary"]["converged"] is True  # type: ignore[index]


def test_no_honest_node_is_ever_discouraged(run: tuple[Simulation, dict]) -> None:
    sim, document = run
    assert [n.discouraged for n in sim.nodes if n.discouraged] == []
    assert document["summary"]["discouraged"] == 0  # type: ignore[index]


def test_a_partition_heals(run: tuple[Simulation, dict]) -> None:
    _, document = run
    partition = document["summary"]["partition"]  # type: ignore[index]
    assert partition["blocks"] > 0
    assert partition["orphaned"] > 0  # both halves mined, one half's blocks lost
    assert partition["heal_ms"] is not None


def test_the_output_has_the_normative_keys(run: tuple[Simulation, dict]) -> None:
    _, document = run
    summary = document["summary"]
    assert isinstance(summary, dict)
    assert summary["nodes"] == 50 and summary["blocks"] == 40
    assert set(summary["reach_ms"]) == {"50", "90", "99"}
    assert 0 < summary["reach_ms"]["50"] <= summary["reach_ms"]["90"] <= summary["reach_ms"]["99"]
    assert 0 <= summary["stale_rate"] <= 1
    assert summary["bytes_per_node_per_block"] > 0
    assert summary["join_ms"] is not None
    assert document["abstracted"]


def test_the_same_seed_gives_the_same_bytes_whatever_the_hash_seed(tmp_path: Path) -> None:
    """Two processes with different PYTHONHASHSEED: str hashing differs, the output not."""
    outputs = []
    for hash_seed in ("1", "2"):
        out = tmp_path / f"run{hash_seed}.json"
        args = ["--nodes", "30", "--blocks", "15", "--block-interval-s", "1"]
        args += ["--latency-ms", "20", "--partition-s", "20", "--json", str(out)]
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        subprocess.run(
            [sys.executable, "-m", "node", "simulate", *args],
            check=True,
            cwd=ROOT,
            env=env,
            capture_output=True,
        )
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]
    assert json.loads(outputs[0])["summary"]["blocks"] == 15


def test_another_seed_gives_another_run() -> None:
    config = replace(SMALL, blocks=10, partition_s=0, join=False)
    first = dumps(to_json(config, Simulation(config).run()))
    again = dumps(to_json(config, Simulation(config).run()))
    other = replace(config, seed=8)
    assert first == again
    assert first != dumps(to_json(other, Simulation(other).run()))


def test_five_percent_loss_still_converges() -> None:
    config = replace(
        SMALL, links=LinkModel(latency_ms=20.0, jitter_ms=5.0, loss=0.05), partition_s=0
    )
    sim = Simulation(config)
    outcome = sim.run()
    assert sim.fabric.failed > 0  # requests really were lost
    assert outcome.converged
    assert {n.chain.tip.hash for n in sim.nodes} == {sim.nodes[0].chain.tip.hash}
    assert outcome.discouraged == 0


def test_the_simulator_drives_the_nodes_own_protocol_core(run: tuple[Simulation, dict]) -> None:
    """No second implementation: each simulated node runs the very peer protocol class the
    node's service runs, with its peer table, and the node's download window and tree."""
    sim, _ = run
    simulated = sim.nodes[0]
    assert type(simulated.core) is node.p2p.protocol.PeerProtocol
    assert node.p2p.service.PeerProtocol is node.p2p.protocol.PeerProtocol
    assert type(simulated.core.table) is node.p2p.peers.PeerTable
    assert type(simulated.chain.tree) is consensus.chain.BlockTree
    assert node.sim.syncing.BlockDownload is node.p2p.policy.BlockDownload
    assert node.p2p.sync.BlockDownload is node.p2p.policy.BlockDownload
    for decision in ("header_fault", "sync_target", "download_peers", "run_arrived"):
        shared = getattr(node.p2p.headersync, decision)
        assert getattr(node.sim.syncing, decision) is shared
        assert getattr(node.p2p.sync, decision) is shared  # the node's sync decides alike
    peer = simulated.core.peers()[0]
    assert type(peer) is node.p2p.peers.Peer and peer.token is not None  # a real session


def test_real_hello_signatures_give_the_same_network() -> None:
    """The stand-in signatures change nothing the core decides: with real Ed25519 keys a
    small network forms and converges too, and the core's own check is back afterwards."""
    config = replace(SMALL, nodes=12, blocks=5, partition_s=0, join=False, real_signatures=True)
    sim = Simulation(config)
    outcome = sim.run()
    assert outcome.converged and outcome.discouraged == 0
    assert all(len(n.core.peers()) >= config.outbound for n in sim.nodes)
    assert node.p2p.protocol.verify_hello is node.p2p.identity.verify_hello
    Simulation(replace(config, real_signatures=False)).run()
    assert node.p2p.protocol.verify_hello is node.p2p.identity.verify_hello


def test_cli_prints_the_summary_and_the_abstractions(tmp_path: Path) -> None:
    out = tmp_path / "sim.json"
    args = ["simulate", "--nodes", "12", "--blocks", "4", "--partition-s", "0"]
    result = CliRunner().invoke(app, [*args, "--latency-ms", "10", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "12 nodes, 4 blocks" in result.output
    assert "abstracted" in result.output and "proof-of-work search" in result.output
    assert json.loads(out.read_text())["summary"]["nodes"] == 12


@pytest.mark.parametrize(
    "bad", [["--nodes", "1"], ["--loss", "0.9"], ["--bandwidth-mbit", "0"], ["--blocks", "x"]]
)
def test_cli_refuses_bad_options(bad: list[str]) -> None:
    result = CliRunner().invoke(app, ["simulate", *bad])
    assert result.exit_code == 2


def test_cli_refuses_a_json_file_it_cannot_write_before_running(tmp_path: Path) -> None:
    target = tmp_path / "missing" / "sim.json"
    result = CliRunner().invoke(app, ["simulate", "--json", str(target)])
    assert result.exit_code == 2
    assert "cannot write" in result.output and "nodes" not in result.output
