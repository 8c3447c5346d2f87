"""The simulator's clock, links and metrics, one at a time."""

from __future__ import annotations

import random

from node.sim.events import EventQueue
from node.sim.metrics import percentile, reach_times
from node.sim.network import LinkModel, Network, random_topology


def test_events_at_the_same_time_run_in_the_order_they_were_scheduled() -> None:
    queue = EventQueue()
    seen: list[str] = []
    for name in ("a", "b", "c"):
        queue.at(5, seen.append, name)
    queue.at(3, seen.append, "first")
    queue.run_until(4)
    assert seen == ["first"] and queue.now == 4
    queue.at(1, seen.append, "late")  # in the past: due now, so before those due at 5
    queue.run_until(10)
    assert seen == ["first", "late", "a", "b", "c"]
    assert queue.processed == 5


def test_a_link_serializes_its_messages_and_keeps_their_order() -> None:
    network = Network(LinkModel(latency_ms=100, jitter_ms=0, bandwidth_mbit=8), random.Random(1))
    network.grow(3)
    # 8 Mbit/s: 1,000 bytes take 1 ms; the second message waits for the first.
    assert network.send(0, 0, 1, 1000) == 1_000 + 100_000
    assert network.send(0, 0, 1, 1000) == 2_000 + 100_000
    assert network.send(0, 1, 0, 1000) == 1_000 + 100_000  # the other direction is free
    assert network.bytes_sent == [2000, 1000, 0]


def test_jitter_never_lets_a_message_overtake_the_one_before() -> None:
    network = Network(LinkModel(latency_ms=10, jitter_ms=50, bandwidth_mbit=1000), random.Random(3))
    network.grow(2)
    arrivals = [network.send(t * 100, 0, 1, 100) for t in range(200)]
    assert all(a is not None for a in arrivals)
    assert arrivals == sorted(arrivals)  # type: ignore[type-var]


def test_a_partition_drops_what_crosses_it_and_the_heal_restores_it() -> None:
    network = Network(LinkModel(jitter_ms=0), random.Random(1))
    network.grow(4)
    network.partition([0, 0, 1, 1])
    assert network.send(0, 0, 2, 10) is None
    assert network.send(0, 0, 1, 10) is not None
    network.partition(None)
    assert network.send(0, 0, 2, 10) is not None


def test_random_topology_picks_distinct_other_nodes() -> None:
    picks = random_topology(50, 8, random.Random(7))
    for index, chosen in enumerate(picks):
        assert len(chosen) == len(set(chosen)) == 8
        assert index not in chosen and all(0 <= c < 50 for c in chosen)
    assert picks == random_topology(50, 8, random.Random(7))


def test_reach_is_the_time_until_each_share_of_the_nodes_held_the_block() -> None:
    held = [1_000 + 10_000 * i for i in range(100)]  # node i at 1 ms + 10 ms * i
    reach = reach_times(1_000, held, 100)
    assert reach == {"50": 490.0, "90": 890.0, "99": 980.0, "mean": 495.0}
    assert reach_times(1_000, held[:99], 100) is None  # never reached every node
    assert percentile([3, 1, 2, 4], 0.5) == 2
