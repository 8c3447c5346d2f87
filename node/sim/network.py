"""Simulated links between nodes: latency, jitter, bandwidth, loss and partitions.

Each direction of a link is its own pipe: a message waits for the messages before it on
that pipe to finish serializing (``size * 8 / bandwidth``), then travels the link's
latency plus a per-message jitter. Arrivals on a pipe keep their order, as on one TCP
connection. A lost message, or one across a partition, never arrives: the request it
belongs to fails, and the requester learns so when its timeout expires.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from node.sim.events import US_PER_MS, US_PER_S

__all__ = ["LinkModel", "Network", "random_topology"]


@dataclass(frozen=True, slots=True)
class LinkModel:
    latency_ms: float = 100.0
    """One-way delay of every link."""
    jitter_ms: float = 10.0
    """Each message is late by a further uniform 0..jitter_ms."""
    bandwidth_mbit: float = 10.0
    """Per link and direction."""
    loss: float = 0.0
    """Probability that a message is lost (the request it belongs to then fails)."""


class Network:
    """Delivery times of messages between nodes numbered 0..n-1."""

    def __init__(self, model: LinkModel, rng: random.Random) -> None:
        self.model = model
        self.rng = rng
        self._latency_us = round(model.latency_ms * US_PER_MS)
        self._jitter_us = round(model.jitter_ms * US_PER_MS)
        self._us_per_byte = 8 * US_PER_S / (model.bandwidth_mbit * 1e6)
        self._loss = model.loss
        self._busy: dict[tuple[int, int], int] = {}
        """Per pipe: when its last message finished serializing."""
        self._last_arrival: dict[tuple[int, int], int] = {}
        self._side: list[int] | None = None
        self.bytes_sent: list[int] = []

    def grow(self, nodes: int) -> None:
        self.bytes_sent.extend([0] * (nodes - len(self.bytes_sent)))

    def partition(self, side: list[int] | None) -> None:
        """``side[i]`` is node i's half; None heals the network."""
        self._side = side

    def reachable(self, src: int, dst: int) -> bool:
        side = self._side
        return side is None or side[src] == side[dst]

    def send(self, now: int, src: int, dst: int, size: int) -> int | None:
        """Put ``size`` bytes on the pipe src -> dst at ``now``; their arrival time, or None
        when the message is lost (the bytes were sent all the same)."""
        self.bytes_sent[src] += size
        pipe = (src, dst)
        done = max(now, self._busy.get(pipe, 0)) + int(size * self._us_per_byte)
        self._busy[pipe] = done
        if self._side is not None and self._side[src] != self._side[dst]:
            return None
        random = self.rng.random
        if self._loss and random() < self._loss:
            return None
        arrival = done + self._latency_us + int(random() * self._jitter_us)
        # One connection: a message never overtakes the one before it.
        arrival = max(arrival, self._last_arrival.get(pipe, 0))
        self._last_arrival[pipe] = arrival
        return arrival


def random_topology(nodes: int, outbound: int, rng: random.Random) -> list[list[int]]:
    """For each node, ``outbound`` distinct other nodes to dial, uniformly at random."""
    others = min(outbound, nodes - 1)
    picks: list[list[int]] = []
    for index in range(nodes):
        chosen = rng.sample(range(nodes - 1), others)
        picks.append([c if c < index else c + 1 for c in chosen])
    return picks
