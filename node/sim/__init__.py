"""A deterministic network simulator: many nodes on one virtual clock (design §14).

The names below load on first use, so that ``ailedger`` (which registers the ``simulate``
command from ``node.sim.command``) does not import the simulator to print its help.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_HOMES = {
    "ABSTRACTED": "report",
    "Costs": "wire",
    "LinkModel": "network",
    "Outcome": "runner",
    "SimConfig": "runner",
    "Simulation": "runner",
    "dumps": "report",
    "to_json": "report",
    "to_text": "report",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'node.sim' has no attribute {name!r}")
    return getattr(importlib.import_module(f"node.sim.{home}"), name)
