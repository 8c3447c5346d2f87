"""A whole simulated run: the network forms, blocks are mined, a node joins, the network
splits in two halves and heals.

Phases, on one virtual clock:
1. ``nodes`` nodes each dial ``outbound`` random others (their seeds); 10 s to connect.
2. Mining: ``blocks`` blocks, then mining stops until every node has one tip. Reach,
   stale rate and bytes are measured here.
3. A new node joins with ``outbound`` random seeds: the time until it holds the tip.
4. A 50/50 partition for ``partition_s`` with mining on both sides, then the heal; mining
   goes on, and the time until every node has one tip is the heal time. The blocks of the
   losing side are orphaned.

Every random choice comes from a ``random.Random`` seeded with the run's seed and the
purpose (``"{seed}:links"``), so that one purpose's draws do not shift another's.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from consensus.chain import Entry
from consensus.genesis import genesis_header
from consensus.params import REGTEST
from node.sim.blocks import Miners, SimBlock, make_block, sample_tx_bytes
from node.sim.events import US_PER_MS, US_PER_S, EventQueue
from node.sim.keys import KeyRing, stand_in_signatures
from node.sim.metrics import reach_times, summarize_reach
from node.sim.network import LinkModel, Network, random_topology
from node.sim.peer import SimNode
from node.sim.wire import Costs, Fabric

__all__ = ["Outcome", "SimConfig", "Simulation"]

WARMUP_US = 10 * US_PER_S
CHECK_US = 100 * US_PER_MS
"""How often a phase waiting for one tip looks: the resolution of join and heal times."""
SETTLE_LIMIT_US = 1_800 * US_PER_S
"""A phase that waits for one tip gives up after this long (and says so)."""


@dataclass(frozen=True)
class SimConfig:
    nodes: int = 1000
    seed: int = 1
    outbound: int = 8
    max_inbound: int = 32
    links: LinkModel = field(default_factory=LinkModel)
    block_interval_s: float = 5.0
    txs_per_block: int = 100
    blocks: int = 200
    miners: int = 20
    partition_s: float = 600.0
    join: bool = True
    real_signatures: bool = False
    """Real Ed25519 hello signatures (slow at scale); else a stand-in (``node.sim.keys``)."""
    line: bool = False
    """A line instead of a random graph: node i dials only node i-1 (``max_outbound`` 1),
    and node 0 mines every block, as in ``scripts/bench propagation``'s line."""
    costs: Costs = field(default_factory=Costs)


@dataclass
class Outcome:
    """What a run measured (``report.to_json`` lays it out)."""

    reach_median: dict[str, float]
    reach_p90: dict[str, float]
    blocks: int
    stale: int
    bytes_per_node_per_block: float
    converged: bool
    join_ms: float | None = None
    heal_ms: float | None = None
    partition_blocks: int = 0
    orphaned: int = 0
    discouraged: int = 0
    events: int = 0
    sim_seconds: float = 0.0


class Simulation:
    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.params = REGTEST
        self.genesis = genesis_header(self.params)
        self.costs = config.costs
        self.queue = EventQueue()
        self.network = Network(config.links, self._rng("links"))
        self.fabric = Fabric(self.queue, self.network)
        self.blocks: dict[str, SimBlock] = {}
        self.mined_at: dict[str, int] = {}
        self.hold: dict[str, list[int]] = {}
        self.tx_bytes = sample_tx_bytes(self.params)
        self.keys = KeyRing(real=config.real_signatures)
        self.nodes: list[SimNode] = []
        self._topology_rng = self._rng("topology")
        self._phase_rng = self._rng("phase")
        miner_nodes = (
            [0]
            if config.line
            else self._rng("miners").sample(range(config.nodes), min(config.miners, config.nodes))
        )
        self.miners = Miners(
            sorted(miner_nodes), round(config.block_interval_s * US_PER_S), self._rng("mining")
        )
        self._mining = False
        self._mine_count: int | None = None
        self._mine_until: int | None = None
        self._mined_in_phase: list[str] = []

    def _rng(self, purpose: str) -> random.Random:
        return random.Random(f"{self.config.seed}:{purpose}")

    # --- nodes -------------------------------------------------------------------------

    def _add_node(self, seeds: list[int]) -> SimNode:
        index = len(self.nodes)
        node = SimNode(
            self,
            index,
            self.keys.make(f"{self.config.seed}:{index}".encode()),
            self._rng(f"node:{index}"),
            max_outbound=1 if self.config.line else self.config.outbound,
            max_inbound=self.config.max_inbound,
        )
        self.nodes.append(node)
        self.fabric.nodes.append(node)
        self.network.grow(len(self.nodes))
        node.start(seeds, self._phase_rng.randrange(2 * US_PER_S))
        return node

    def held(self, node: int, block_hash: str) -> None:
        times = self.hold.get(block_hash)
        if times is not None:
            times.append(self.queue.now)

    def one_tip(self) -> bool:
        tip = self.nodes[0].chain.tip.hash
        return all(n.chain.tip.hash == tip for n in self.nodes)

    def _settle(self, done: Callable[[], bool]) -> int | None:
        """Run until ``done()`` holds (checked every ``CHECK_US``); the time it took, or None."""
        start = self.queue.now
        while self.queue.now - start < SETTLE_LIMIT_US:
            self.queue.run_until(self.queue.now + CHECK_US)
            if done():
                return self.queue.now - start
        return None

    # --- mining ------------------------------------------------------------------------

    def _schedule_block(self) -> None:
        self.queue.at(self.queue.now + self.miners.next_gap(), self._find_block)

    def _find_block(self, _: object = None) -> None:
        if not self._mining:
            return
        if self._mine_until is not None and self.queue.now >= self._mine_until:
            self._mining = False
            return
        node = self.nodes[self.miners.next_miner()]
        tip = node.chain.tip
        parent = self.genesis if tip.height == 0 else self.blocks[tip.hash].header
        mtp = node.chain.tree.median_time_past(tip, self.params.median_time_span)
        block = make_block(
            parent,
            node.index,
            Miners.key(node.index),
            max(node.now_ms(), mtp + 1),
            self.config.txs_per_block,
            self.tx_bytes,
        )
        self.blocks[block.hash] = block
        self.mined_at[block.hash] = self.queue.now
        self.hold[block.hash] = []
        self._mined_in_phase.append(block.hash)
        node.mined(block)
        if len(self._mined_in_phase) == self._mine_count:
            self._mining = False
        else:
            self._schedule_block()

    def _mine(self, *, count: int | None = None, until_us: int | None = None) -> list[str]:
        """Mine ``count`` blocks, or until the clock reads ``until_us``; the blocks found."""
        self._mined_in_phase = []
        self._mine_count = count
        self._mine_until = until_us
        self._mining = True
        self._schedule_block()
        while self._mining:
            self.queue.run_until(self.queue.now + CHECK_US)
        return self._mined_in_phase

    # --- the run -----------------------------------------------------------------------

    def run(self) -> Outcome:
        with stand_in_signatures(self.keys):
            return self._run()

    def _run(self) -> Outcome:
        config = self.config
        if config.line:
            picks = [[i - 1] if i else [] for i in range(config.nodes)]
        else:
            picks = random_topology(config.nodes, config.outbound, self._topology_rng)
        for seeds in picks:
            self._add_node(seeds)
        self.queue.run_until(WARMUP_US)
        start_bytes = sum(self.network.bytes_sent)
        mined = self._mine(count=config.blocks)
        converged = self._settle(self.one_tip) is not None
        total_bytes = sum(self.network.bytes_sent) - start_bytes
        best = _ancestry(self.nodes[0].chain.tip)
        per_block = []
        for block_hash in mined:
            if block_hash in best:
                reach = reach_times(self.mined_at[block_hash], self.hold[block_hash], config.nodes)
                if reach is not None:
                    per_block.append(reach)
        median, p90 = summarize_reach(per_block)
        outcome = Outcome(
            reach_median=median,
            reach_p90=p90,
            blocks=len(mined),
            stale=sum(1 for h in mined if h not in best),
            bytes_per_node_per_block=round(total_bytes / config.nodes / max(len(mined), 1), 1),
            converged=converged,
        )
        self.hold.clear()  # the phases below measure no reach
        if config.join:
            outcome.join_ms = self._join()
        if config.partition_s > 0:
            self._partition(outcome)
        outcome.discouraged = sum(len(n.discouraged) for n in self.nodes)
        outcome.events = self.queue.processed
        outcome.sim_seconds = round(self.queue.now / US_PER_S, 3)
        return outcome

    def _join(self) -> float | None:
        seeds = self._topology_rng.sample(
            range(len(self.nodes)), min(self.config.outbound, len(self.nodes))
        )
        node = self._add_node(seeds)
        tip = self.nodes[0].chain.tip.hash
        took = self._settle(lambda: node.chain.tip.hash == tip)
        return None if took is None else round(took / US_PER_MS, 1)

    def _partition(self, outcome: Outcome) -> None:
        order = list(range(len(self.nodes)))
        self._rng("partition").shuffle(order)
        side = [0] * len(self.nodes)
        for index in order[len(order) // 2 :]:
            side[index] = 1
        self.network.partition(side)
        end = self.queue.now + round(self.config.partition_s * US_PER_S)
        mined = list(self._mine(until_us=end))
        self.network.partition(None)
        # Mining goes on: two halves with equal work would each keep their own tip (the
        # first received wins a tie), so it is the next blocks that bring one tip about.
        self._mine_until = None
        self._mining = True
        self._schedule_block()
        took = self._settle(self.one_tip)
        self._mining = False
        outcome.heal_ms = None if took is None else round(took / US_PER_MS, 1)
        best = _ancestry(self.nodes[0].chain.tip)
        outcome.partition_blocks = len(mined)
        outcome.orphaned = sum(1 for h in mined if h not in best)


def _ancestry(tip: Entry) -> set[str]:
    hashes: set[str] = set()
    walk: Entry | None = tip
    while walk is not None:
        hashes.add(walk.hash)
        walk = walk.parent
    return hashes
