"""Group commit: submissions that arrive while the chain worker is busy go together.

Each submission is a list of items and gets back one result per item, in order. The
first submission starts a flusher task; while one flush runs, later submissions queue,
and the next flush takes all of them (up to ``max_items``) in one call: one storage
transaction, one commit, for many callers. The flusher is a task of its own, so a
caller that goes away (a cancelled request) does not strand the others.

A *patient* submission (a run of synced blocks) may wait up to ``linger_s`` for others to
fill the group: a commit's cost grows far slower than its size, so while a chain is
being downloaded, fewer and fuller commits leave more of the machine to the rest of
the pipeline. Anything else in the queue (a relayed or mined block, a request waiting
for its answer) makes the flush go at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["GroupCommit"]

I = TypeVar("I")  # noqa: E741 - the item type
R = TypeVar("R")


@dataclass
class _Entry(Generic[I, R]):
    items: Sequence[I]
    future: asyncio.Future[list[R]]
    patient: bool


class GroupCommit(Generic[I, R]):
    def __init__(
        self,
        flush: Callable[[list[I]], Awaitable[list[R]]],
        *,
        name: str,
        max_items: int,
        linger_s: float = 0.0,
    ) -> None:
        self._flush = flush
        self._name = name
        self._max_items = max_items
        self._linger_s = linger_s
        self._queue: list[_Entry[I, R]] = []
        self._arrived = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, items: Sequence[I], *, patient: bool = False) -> list[R]:
        """One result per item, once the flush that took them has finished; a ``patient``
        submission may wait up to ``linger_s`` for a fuller group."""
        future: asyncio.Future[list[R]] = asyncio.get_running_loop().create_future()
        self._queue.append(_Entry(items, future, patient))
        self._arrived.set()
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_all(), name=self._name)
            self._flusher.add_done_callback(self._flusher_done)
        return await future

    async def _flush_all(self) -> None:
        while self._queue:
            await self._fill()
            await self._flush_group(self._take())

    def _flusher_done(self, flusher: asyncio.Task[None]) -> None:
        """A cancelled flusher (shutting down), even one cancelled before it ever ran,
        leaves nobody waiting for ever."""
        if flusher.cancelled() and flusher is self._flusher:
            for entry in self._queue:
                entry.future.cancel()
            self._queue.clear()

    async def _fill(self) -> None:
        """While only patient submissions wait and the group is not full, wait for more,
        for at most ``linger_s``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._linger_s
        while all(e.patient for e in self._queue) and self._queued() < self._max_items:
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), deadline - loop.time())
            except TimeoutError:
                return

    def _queued(self) -> int:
        return sum(len(entry.items) for entry in self._queue)

    def _take(self) -> list[_Entry[I, R]]:
        """Whole submissions from the front, up to ``max_items`` (at least one)."""
        count, total = 0, 0
        for entry in self._queue:
            if count and total + len(entry.items) > self._max_items:
                break
            count, total = count + 1, total + len(entry.items)
        group, self._queue = self._queue[:count], self._queue[count:]
        return group

    async def _flush_group(self, group: list[_Entry[I, R]]) -> None:
        flat = [item for entry in group for item in entry.items]
        try:
            results = await self._flush(flat)
            if len(results) != len(flat):
                raise RuntimeError(f"{self._name}: {len(results)} results for {len(flat)} items")
        except asyncio.CancelledError:
            for entry in group:
                entry.future.cancel()
            raise
        except Exception as exc:
            for entry in group:
                if not entry.future.done():
                    entry.future.set_exception(exc)
            return
        start = 0
        for entry in group:
            if not entry.future.done():
                entry.future.set_result(results[start : start + len(entry.items)])
            start += len(entry.items)
