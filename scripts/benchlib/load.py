"""The HTTP load client: pre-serialised JSON bodies POSTed by a few asyncio workers."""

from __future__ import annotations

import asyncio
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
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    statuses: Counter[int] = Counter()
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60.0) as client:
        shared = iter(bodies)
        start = time.monotonic()
        deadline = start + max_seconds
        workers = [_worker(client, path, shared, statuses, deadline) for _ in range(concurrency)]
        await asyncio.gather(*workers)
        elapsed = time.monotonic() - start
    return LoadResult(statuses, elapsed)


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
