"""The HTTP load client: pre-serialised JSON bodies POSTed by a few asyncio workers."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import httpx

__all__ = ["LoadResult", "post_all"]

JSON = {"content-type": "application/json"}


@dataclass(frozen=True)
class LoadResult:
    statuses: Counter[int]
    elapsed: float
    client_cpu: float
    """CPU seconds this process spent, mostly in httpx and the event loop."""

    @property
    def count(self) -> int:
        return sum(self.statuses.values())

    @property
    def client_cpu_ms(self) -> float:
        """Client CPU milliseconds per request."""
        return self.client_cpu * 1000 / max(1, self.count)

    def rate(self, status: int) -> float:
        """Responses with ``status`` per second of wall time."""
        return self.statuses[status] / self.elapsed

    def summary(self) -> str:
        return ", ".join(f"{n:,} x {code}" for code, n in sorted(self.statuses.items()))


async def _worker(
    client: httpx.AsyncClient,
    path: str,
    bodies: Iterator[bytes],
    statuses: Counter[int],
    deadline: float,
) -> None:
    for body in bodies:  # one shared iterator: each body is sent exactly once
        if time.monotonic() > deadline:
            return
        response = await client.post(path, content=body, headers=JSON)
        statuses[response.status_code] += 1


async def _post_all(
    url: str, path: str, bodies: Sequence[bytes], concurrency: int, max_seconds: float
) -> LoadResult:
    statuses: Counter[int] = Counter()
    async with contextlib.AsyncExitStack() as stack:
        # A client (one keep-alive connection) per worker: one shared pool of 16 costs
        # noticeably more client CPU per request, and the client is already the bottleneck.
        clients = [
            await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=60.0))
            for _ in range(concurrency)
        ]
        shared = iter(bodies)
        cpu_start = time.process_time()
        start = time.monotonic()
        deadline = start + max_seconds
        await asyncio.gather(*(_worker(c, path, shared, statuses, deadline) for c in clients))
        elapsed = time.monotonic() - start
        cpu = time.process_time() - cpu_start
    return LoadResult(statuses, elapsed, cpu)


def post_all(
    url: str,
    path: str,
    bodies: Sequence[bytes],
    *,
    concurrency: int = 16,
    max_seconds: float = 60.0,
) -> LoadResult:
    """POST every body (stopping early after ``max_seconds``), ``concurrency`` at a time."""
    return asyncio.run(_post_all(url, path, bodies, concurrency, max_seconds))
