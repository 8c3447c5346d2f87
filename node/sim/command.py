"""``ailedger simulate``: run the network simulator and print what it measured."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["simulate"]


def simulate(
    *,
    nodes: Annotated[int, typer.Option(min=2, max=100_000, help="Nodes in the network.")] = 1000,
    seed: Annotated[
        int, typer.Option(help="The same seed gives the same output, byte for byte.")
    ] = 1,
    outbound: Annotated[int, typer.Option(min=1, max=64, help="Outbound peers a node dials.")] = 8,
    latency_ms: Annotated[
        float, typer.Option(min=0, max=60_000, help="One-way link latency.")
    ] = 100.0,
    jitter_ms: Annotated[
        float, typer.Option(min=0, max=60_000, help="Extra delay per message, uniform 0..this.")
    ] = 10.0,
    bandwidth_mbit: Annotated[
        float, typer.Option(min=0.001, max=1e6, help="Per link and direction.")
    ] = 10.0,
    loss: Annotated[
        float, typer.Option(min=0, max=0.5, help="Probability a message is lost.")
    ] = 0.0,
    block_interval_s: Annotated[
        float, typer.Option(min=0.01, max=86_400, help="Mean time between blocks.")
    ] = 5.0,
    txs_per_block: Annotated[
        int, typer.Option(min=0, max=2000, help="Transactions in each block.")
    ] = 100,
    blocks: Annotated[
        int, typer.Option(min=1, max=1_000_000, help="Blocks to mine (the measured phase).")
    ] = 200,
    miners: Annotated[int, typer.Option(min=1, help="Nodes that mine (hash power ~ 1/rank).")] = 20,
    partition_s: Annotated[
        float, typer.Option(min=0, max=86_400, help="50/50 partition after the run; 0 skips it.")
    ] = 600.0,
    block_cpu_ms: Annotated[
        float, typer.Option(min=0, max=60_000, help="CPU per new block (calibrated: 7 ms).")
    ] = 7.0,
    real_signatures: Annotated[
        bool, typer.Option(help="Real Ed25519 hello signatures (slow with many nodes).")
    ] = False,
    json_file: Annotated[
        Path | None, typer.Option("--json", metavar="FILE", help="Write the figures as JSON.")
    ] = None,
) -> None:
    """Simulate a network of nodes running the real peer logic and fork choice."""
    from node.sim import Costs, LinkModel, SimConfig, Simulation, dumps, to_json, to_text  # noqa: PLC0415

    if json_file is not None and not json_file.parent.is_dir():
        typer.echo(f"error: cannot write {json_file}: no such directory", err=True)
        raise typer.Exit(2)
    config = SimConfig(
        nodes=nodes,
        seed=seed,
        outbound=outbound,
        links=LinkModel(latency_ms, jitter_ms, bandwidth_mbit, loss),
        block_interval_s=block_interval_s,
        txs_per_block=txs_per_block,
        blocks=blocks,
        miners=min(miners, nodes),
        partition_s=partition_s,
        costs=Costs(block_us=round(block_cpu_ms * 1000)),
        real_signatures=real_signatures,
    )
    document = to_json(config, Simulation(config).run())
    if json_file is not None:
        try:
            json_file.write_text(dumps(document))
        except OSError as exc:
            typer.echo(f"error: cannot write {json_file}: {exc.strerror}", err=True)
            raise typer.Exit(2) from None
    typer.echo(to_text(document), nl=False)
