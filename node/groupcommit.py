"""Group commit: submissions that arrive while the chain worker is busy go together.

Each submission is a list of items and gets back one result per item, in order. The
first submission starts a flusher task; while one flush runs, later submissions queue,
and the next flush takes all of them (up to ``max_items``) in one call: one storage
transaction, one commit, for many callers. The flusher is a task of its own, so a
caller that goes away (a cancelled request) does not strand the others.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

__all__ = ["GroupCommit"]

I = TypeVar("I")  # noqa: E741 - the item type
R = TypeVar("R")


class GroupCommit(Generic[I, R]):
    def __init__(
        self, flush: Callable[[list[I]], Awaitable[list[R]]], *, name: str, max_items: int
    ) -> None:
        self._flush = flush
        self._name = name
        self._max_items = max_items
        self._queue: list[tuple[Sequence[I], asyncio.Future[list[R]]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, items: Sequence[I]) -> list[R]:
        """One result per item, once the flush that took them has finished."""
        future: asyncio.Future[list[R]] = asyncio.get_running_loop().create_future()
        self._queue.append((items, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_all(), name=self._name)
        return await future

    async def _flush_all(self) -> None:
        try:
            while self._queue:
                await self._flush_group(self._take())
        except asyncio.CancelledError:  # shutting down: nobody is left waiting for ever
            for _, future in self._queue:
                future.cancel()
            self._queue.clear()
            raise

    def _take(self) -> list[tuple[Sequence[I], asyncio.Future[list[R]]]]:
        """Whole submissions from the front, up to ``max_items`` (at least one)."""
        count, total = 0, 0
        for items, _ in self._queue:
            if count and total + len(items) > self._max_items:
                break
            count, total = count + 1, total + len(items)
        group, self._queue = self._queue[:count], self._queue[count:]
        return group

    async def _flush_group(self, group: list[tuple[Sequence[I], asyncio.Future[list[R]]]]) -> None:
        flat = [item for items, _ in group for item in items]
        try:
            results = await self._flush(flat)
            if len(results) != len(flat):
                raise RuntimeError(f"{self._name}: {len(results)} results for {len(flat)} items")
        except asyncio.CancelledError:
            for _, future in group:
                future.cancel()
            raise
        except Exception as exc:
            for _, future in group:
                if not future.done():
                    future.set_exception(exc)
            return
        start = 0
        for items, future in group:
            if not future.done():
                future.set_result(results[start : start + len(items)])
            start += len(items)
