"""The simulator's virtual clock and event queue.

Time is an integer number of microseconds since the start of the run: no float drift and
no wall clock. Events due at the same time run in the order they were scheduled (a
sequence number breaks ties), so a run is a pure function of its inputs and its seed.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any

__all__ = ["US_PER_MS", "US_PER_S", "EventQueue"]

US_PER_MS = 1_000
US_PER_S = 1_000_000


class EventQueue:
    """A heap of ``(time_us, sequence, callback, argument)``; ``now`` is the virtual clock."""

    def __init__(self) -> None:
        self.now = 0
        self._heap: list[tuple[int, int, Callable[[Any], None], Any]] = []
        self._sequence = 0
        self.processed = 0

    def __len__(self) -> int:
        return len(self._heap)

    def at(self, when: int, callback: Callable[[Any], None], argument: Any = None) -> None:
        """Run ``callback(argument)`` at virtual time ``when`` (never before ``now``)."""
        self._sequence += 1
        heapq.heappush(self._heap, (max(when, self.now), self._sequence, callback, argument))

    def after(self, delay: int, callback: Callable[[Any], None], argument: Any = None) -> None:
        self.at(self.now + delay, callback, argument)

    def run_until(self, stop: int) -> None:
        """Run the events due up to ``stop``; then the clock reads ``stop``."""
        heap = self._heap
        pop = heapq.heappop
        while heap and heap[0][0] <= stop:
            when, _, callback, argument = pop(heap)
            self.now = when
            callback(argument)
            self.processed += 1
        self.now = max(self.now, stop)
