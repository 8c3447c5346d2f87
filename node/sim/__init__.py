"""A deterministic network simulator: many nodes on one virtual clock (design §14)."""

from node.sim.network import LinkModel
from node.sim.report import ABSTRACTED, dumps, to_json, to_text
from node.sim.runner import Outcome, SimConfig, Simulation
from node.sim.wire import Costs

__all__ = [
    "ABSTRACTED",
    "Costs",
    "LinkModel",
    "Outcome",
    "SimConfig",
    "Simulation",
    "dumps",
    "to_json",
    "to_text",
]
