"""The background miner: worker processes that search nonces for the node's block template.

Mining is CPU-bound pure Python, so it runs in separate OS processes (``multiprocessing``
with the "spawn" context, safe next to threads and asyncio) and the node's event loop
stays responsive (design §6). The parent keeps the ``Template`` (header, target and the
node's opaque ``payload``); a worker only ever sees a job number, the 120-byte header
prefix, the target and its share of the nonce range, and hashes with a SHA-256 midstate
(``consensus.pow.solve``) in batches of ``BATCH_SIZE`` nonces.

Process protocol. Each worker has two one-way pipes; every message is a tuple.

    parent -> worker (control)
        ("job", seq, prefix, target, start, end)  drop the current work, search [start, end)
        ("pause",)                                stop hashing and wait for the next job
        ("stop",)                                 exit
        end of file                               the parent is gone: exit

    worker -> parent (reports)
        ("hashes", seq, n)                        n more hashes done (about 4 a second)
        ("found", seq, n, nonce, job_hashes)      nonce meets the target; the worker pauses
        ("exhausted", seq, n)                     no nonce in the range; the worker pauses
        end of file                               the worker exited

A worker reads its control pipe between batches, so a new job takes effect within one
batch (a few milliseconds). It also exits when ``os.getppid()`` changes, so no orphan keeps
burning CPU after the node is killed with SIGKILL.

In the parent, a reader thread turns reports into events. ``seq`` counts ``set_template``
calls: a report whose ``seq`` is not the current one is stale and dropped, and so is a
queued event that became stale before it was taken. A job yields at most one block: the
first solution pauses every worker until the node sets the next template (normally the
one on top of the block just found).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import threading
import time
from collections import deque
from dataclasses import dataclass
from itertools import pairwise
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any

from consensus.pow import MAX_NONCE, solve
from node.miner_worker import BATCH_SIZE, worker_main

if TYPE_CHECKING:
    from consensus.block import Header

__all__ = [
    "BATCH_SIZE",
    "Exhausted",
    "Miner",
    "MinerEvent",
    "MinerFailedError",
    "NonceRangeExhaustedError",
    "Solution",
    "Template",
    "mine_once",
]

RATE_WINDOW = 5.0
"""Seconds of hash reports that ``Miner.hash_rate`` averages over."""

_STOP_TIMEOUT = 3.0
_U256 = 2**256

log = logging.getLogger(__name__)


class NonceRangeExhaustedError(Exception):
    """No nonce in the searched range meets the target: change the header and retry."""


class MinerFailedError(Exception):
    """Every worker process died on its own (not by ``stop``): no result will come."""


@dataclass(frozen=True)
class Template:
    """Work for the miner: a header with every field final but the nonce.

    ``payload`` is whatever the node needs to turn a solution back into a block (the
    transactions, say). It stays in the parent process; workers never see it. Workers
    search ``[nonce_start, nonce_end)`` between them, each a disjoint slice.
    """

    job_id: int
    header: Header
    target: int
    payload: object = None
    nonce_start: int = 0
    nonce_end: int = MAX_NONCE

    def __post_init__(self) -> None:
        if not 0 <= self.target < _U256:
            raise ValueError(f"target must be in [0, 2**256), got {self.target}")
        if not 0 <= self.nonce_start <= self.nonce_end <= MAX_NONCE:
            raise ValueError(
                f"nonce range [{self.nonce_start}, {self.nonce_end}) is not within [0, 2**53)"
            )


@dataclass(frozen=True)
class Solution:
    """A nonce that makes the template's header meet its target."""

    job_id: int
    nonce: int
    header: Header
    """The template's header with ``nonce`` filled in: the block header to publish."""
    template: Template
    worker: int
    hashes: int
    """Hashes the finding worker spent on this job, the solving one included."""


@dataclass(frozen=True)
class Exhausted:
    """Every worker searched its whole slice of the job's range in vain.

    The node should roll the timestamp (or otherwise change the header) and set a new
    template. With the default range of 2**53 nonces this never happens in practice.
    """

    job_id: int
    template: Template


MinerEvent = Solution | Exhausted


def mine_once(header: Header, target: int, start: int = 0, end: int = MAX_NONCE) -> Header:
    """Solve ``header`` in this process: the first nonce in ``[start, end)`` meeting ``target``.

    For on-demand regtest mining (about two hashes a block), where starting a process
    would cost more than the work. Raises ``NonceRangeExhaustedError`` if no nonce fits.
    """
    prefix = header.prefix()
    for first in range(start, min(end, MAX_NONCE), BATCH_SIZE):
        nonce = solve(prefix, target, first, min(BATCH_SIZE, end - first))
        if nonce is not None:
            return header.with_nonce(nonce)
    raise NonceRangeExhaustedError(f"no nonce in [{start}, {end}) meets the target")


# --- parent side ---------------------------------------------------------------------------


@dataclass
class _Worker:
    index: int
    process: BaseProcess
    control: Connection
    reports: Connection


def _split(start: int, end: int, parts: int) -> list[tuple[int, int]]:
    """``[start, end)`` cut into ``parts`` disjoint slices; the last takes the remainder."""
    size = (end - start) // parts
    bounds = [start + i * size for i in range(parts)] + [end]
    return list(pairwise(bounds))


def _send_quietly(conn: Connection, message: tuple[Any, ...]) -> None:
    # OSError: the worker died or is being stopped; the reader thread notices its EOF.
    with contextlib.suppress(OSError):
        conn.send(message)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class Miner:
    """Owns ``workers`` mining processes and hands out their solutions.

    Thread-safe. Use ``start``/``stop`` (or ``with Miner(...) as miner``), feed work with
    ``set_template``, and take results with ``await next_event()`` / ``next_solution()`` in
    asyncio code or ``wait_event`` / ``wait_solution`` elsewhere (one consumer at a time).
    """

    def __init__(self, workers: int = 1) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers = workers
        self._context = multiprocessing.get_context("spawn")
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)
        self._procs: list[_Worker] = []
        self._reader: threading.Thread | None = None
        self._template: Template | None = None
        self._seq = 0
        self._solved = False
        self._exhausted: set[int] = set()
        self._live: set[int] = set()
        self._failure: str | None = None
        self._events: deque[tuple[int, MinerEvent]] = deque()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._samples: deque[tuple[float, int]] = deque()
        self._rate_origin = time.monotonic()
        self._total_hashes = 0

    # -- lifecycle

    def start(self) -> None:
        """Start the worker processes (no-op when running) and resume the current template."""
        with self._lock:
            if self._procs:
                return
            self._procs = [self._spawn(i) for i in range(self.workers)]
            self._live = {proc.index for proc in self._procs}
            self._failure = None
            self._rate_origin = time.monotonic()
            if not self._solved:
                self._send_job_locked()
            self._reader = threading.Thread(
                target=self._read_reports,
                args=(list(self._procs),),
                name="ailedger-miner-reports",
                daemon=True,
            )
            self._reader.start()

    def stop(self) -> None:
        """Stop and reap every worker process. Idempotent; the template is kept."""
        with self._lock:
            procs, self._procs = self._procs, []
            reader, self._reader = self._reader, None
            for proc in procs:
                _send_quietly(proc.control, ("stop",))
                proc.control.close()
        for proc in procs:
            _reap(proc.process)
        if reader is not None:
            reader.join()
        for proc in procs:
            proc.reports.close()
            proc.process.close()

    def __enter__(self) -> Miner:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _spawn(self, index: int) -> _Worker:
        control_r, control_w = self._context.Pipe(duplex=False)
        reports_r, reports_w = self._context.Pipe(duplex=False)
        process = self._context.Process(
            target=worker_main,
            args=(control_r, reports_w, os.getpid()),
            name=f"ailedger-miner-{index}",
            daemon=True,
        )
        process.start()
        # Only the worker may hold these ends: then its death is our EOF, and ours is its.
        control_r.close()
        reports_w.close()
        return _Worker(index, process, control_w, reports_r)

    # -- work

    def set_template(self, template: Template | None) -> None:
        """Replace the work of every worker at once; ``None`` pauses mining.

        Solutions and exhaustion reports of earlier templates are dropped from now on.
        """
        with self._lock:
            self._template = template
            self._seq += 1
            self._solved = False
            self._exhausted.clear()
            self._events.clear()
            self._send_job_locked()

    def _send_job_locked(self) -> None:
        template = self._template
        if template is None:
            for proc in self._procs:
                _send_quietly(proc.control, ("pause",))
            return
        prefix = template.header.prefix()
        slices = _split(template.nonce_start, template.nonce_end, len(self._procs) or 1)
        for proc, (start, end) in zip(self._procs, slices, strict=False):
            _send_quietly(proc.control, ("job", self._seq, prefix, template.target, start, end))

    # -- reports (reader thread)

    def _read_reports(self, procs: list[_Worker]) -> None:
        pending = {proc.reports: proc for proc in procs}
        while pending:
            for conn in wait(list(pending)):
                assert isinstance(conn, Connection)
                proc = pending[conn]
                try:
                    message = conn.recv()
                except (EOFError, OSError):
                    del pending[conn]
                    self._on_worker_exit(proc)
                    continue
                self._on_report(proc.index, message)

    def _on_worker_exit(self, proc: _Worker) -> None:
        with self._lock:
            if not any(p is proc for p in self._procs):
                return  # stopped on purpose
            log.error("miner worker %d (pid %s) died", proc.index, proc.process.pid)
            self._live.discard(proc.index)
            if not self._live:
                self._failure = "every miner worker process died; see the log"
                self._notify_locked()

    def _on_report(self, index: int, message: Any) -> None:
        kind, seq, hashes = message[0], message[1], message[2]
        with self._lock:
            self._count_hashes_locked(hashes)
            template = self._template
            if seq != self._seq or template is None or self._solved:
                return  # stale: a report about work that was replaced
            event: MinerEvent
            if kind == "found":
                nonce, job_hashes = message[3], message[4]
                header = template.header.with_nonce(nonce)
                event = Solution(template.job_id, nonce, header, template, index, job_hashes)
                self._solved = True
                for proc in self._procs:  # one block per job: idle until the next template
                    _send_quietly(proc.control, ("pause",))
            elif kind == "exhausted":
                self._exhausted.add(index)
                if not self._live <= self._exhausted:
                    return
                event = Exhausted(template.job_id, template)
            else:
                return
            self._events.append((seq, event))
            self._notify_locked()

    def _notify_locked(self) -> None:
        self._ready.notify_all()
        waiters, self._waiters = self._waiters, []
        for loop, waiter in waiters:
            # RuntimeError: that event loop is closed, so nobody waits there any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_wake, waiter)

    def _pop_event_locked(self) -> MinerEvent | None:
        """The oldest event of the current job; raises ``MinerFailedError`` when none can come."""
        while self._events:
            seq, event = self._events.popleft()
            if seq == self._seq:
                return event
        if self._failure is not None:
            raise MinerFailedError(self._failure)
        return None

    # -- results

    async def next_event(self) -> MinerEvent:
        """Wait, without blocking the event loop, for the current job's next event.

        Raises ``MinerFailedError`` if every worker process died (not by ``stop``).
        """
        loop = asyncio.get_running_loop()
        while True:
            with self._lock:
                event = self._pop_event_locked()
                if event is not None:
                    return event
                waiter: asyncio.Future[None] = loop.create_future()
                self._waiters.append((loop, waiter))
            try:
                await waiter
            finally:
                with self._lock:
                    if (loop, waiter) in self._waiters:
                        self._waiters.remove((loop, waiter))

    async def next_solution(self) -> Solution:
        """Like ``next_event``, skipping ``Exhausted`` events."""
        while True:
            event = await self.next_event()
            if isinstance(event, Solution):
                return event

    def wait_event(self, timeout: float | None = None) -> MinerEvent | None:
        """Block up to ``timeout`` seconds (forever if None) for the next event."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._ready:
            while True:
                event = self._pop_event_locked()
                if event is not None:
                    return event
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._ready.wait(remaining)

    def wait_solution(self, timeout: float | None = None) -> Solution | None:
        """Like ``wait_event``, skipping ``Exhausted`` events; None on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            event = self.wait_event(remaining)
            if event is None or isinstance(event, Solution):
                return event

    # -- state and metrics

    @property
    def running(self) -> bool:
        with self._lock:
            return bool(self._procs)

    @property
    def mining(self) -> bool:
        """True while workers run and have an unsolved template to hash."""
        with self._lock:
            return bool(self._procs) and self._template is not None and not self._solved

    @property
    def template(self) -> Template | None:
        return self._template

    @property
    def pids(self) -> list[int]:
        """Process ids of the running workers (for tests and diagnostics)."""
        with self._lock:
            return [p.process.pid for p in self._procs if p.process.pid is not None]

    @property
    def total_hashes(self) -> int:
        """Hashes reported since this Miner was made (a Prometheus counter)."""
        with self._lock:
            return self._total_hashes

    def hash_rate(self) -> float:
        """Hashes per second over the last ``RATE_WINDOW`` seconds."""
        with self._lock:
            now = time.monotonic()
            self._trim_samples_locked(now)
            span = min(RATE_WINDOW, now - self._rate_origin)
            hashes = sum(n for _, n in self._samples)
            return hashes / span if span > 0 else 0.0

    def _count_hashes_locked(self, hashes: int) -> None:
        if hashes:
            now = time.monotonic()
            self._total_hashes += hashes
            self._samples.append((now, hashes))
            self._trim_samples_locked(now)

    def _trim_samples_locked(self, now: float) -> None:
        while self._samples and self._samples[0][0] < now - RATE_WINDOW:
            self._samples.popleft()


def _reap(process: BaseProcess) -> None:
    """Join a worker that was told to stop; escalate to SIGTERM, then SIGKILL."""
    process.join(_STOP_TIMEOUT)
    if process.is_alive():
        process.terminate()
        process.join(1.0)
    if process.is_alive():
        process.kill()
        process.join()
