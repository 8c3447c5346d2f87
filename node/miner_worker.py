"""The miner's worker process: hash nonce batches for the parent's current job.

See ``node.miner`` for the protocol on the two pipes. This module is what "spawn"
imports in each worker, so it keeps its imports to the hashing it needs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from consensus.pow import solve

__all__ = ["BATCH_SIZE", "REPORT_INTERVAL", "WORKER_NICENESS", "worker_main"]

WORKER_NICENESS = 10
"""Hashing yields to the node's own work: the API, validation and sync come first."""

BATCH_SIZE = 8_192
"""Nonces a worker hashes between two reads of its control pipe: about 10 ms in CPython,
so a new template takes over that fast. The read costs a few microseconds (0.05%)."""

REPORT_INTERVAL = 0.25
"""Seconds between a busy worker's hash-count reports."""

_PARENT_CHECK = 1.0


# --- worker process ------------------------------------------------------------------------


@dataclass
class _Work:
    """A worker's current job: the slice still to search and the hashes spent so far."""

    seq: int
    prefix: bytes
    target: int
    cursor: int
    end: int
    hashes: int = 0


@dataclass
class _Meter:
    """Counts hashes and reports them to the parent at most every ``REPORT_INTERVAL``."""

    reports: Connection
    unreported: int = 0
    last: float = field(default_factory=time.monotonic)

    def take(self) -> int:
        n, self.unreported, self.last = self.unreported, 0, time.monotonic()
        return n

    def tick(self, seq: int) -> None:
        if time.monotonic() - self.last >= REPORT_INTERVAL:
            self.reports.send(("hashes", seq, self.take()))

    def flush(self, seq: int) -> None:
        if self.unreported:
            self.reports.send(("hashes", seq, self.take()))


def worker_main(control: Connection, reports: Connection, parent_pid: int) -> None:
    """Entry point of a worker process (module level, so "spawn" can import it)."""
    # Ctrl-C reaches the whole process group; the parent decides when workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Hashing yields to the node's own work: the API, validation and sync come first.
    with contextlib.suppress(OSError):
        os.nice(WORKER_NICENESS)
    try:
        _work_loop(control, reports, parent_pid)
    except (EOFError, OSError):
        pass  # the parent is gone (closed pipe): nobody is left to report to
    finally:
        control.close()
        reports.close()


def _work_loop(control: Connection, reports: Connection, parent_pid: int) -> None:
    work: _Work | None = None
    seq = 0
    meter = _Meter(reports)
    while True:
        if work is None:
            meter.flush(seq)
        message = _read_control(control, parent_pid, block=work is None)
        while message is not None:  # only the latest instruction counts
            if message[0] == "stop":
                return
            work = _work_from(message)
            seq = work.seq if work is not None else seq
            message = _read_control(control, parent_pid, block=False)
        if work is not None and not _mine_batch(work, meter):
            work = None


def _read_control(control: Connection, parent_pid: int, *, block: bool) -> Any:
    """The next control message, or None when there is none and ``block`` is false.

    Raises ``EOFError`` when the parent has closed its end or died.
    """
    while True:
        if os.getppid() != parent_pid:
            raise EOFError("parent process died")
        if control.poll(_PARENT_CHECK if block else 0):
            return control.recv()  # EOFError at end of file
        if not block:
            return None


def _work_from(message: Any) -> _Work | None:
    if message[0] == "pause":
        return None
    _, seq, prefix, target, start, end = message
    return _Work(seq=seq, prefix=prefix, target=target, cursor=start, end=end)


def _mine_batch(work: _Work, meter: _Meter) -> bool:
    """Hash one batch; report a solution or an exhausted range. True while work remains."""
    count = min(BATCH_SIZE, work.end - work.cursor)
    nonce = solve(work.prefix, work.target, work.cursor, count)
    done = count if nonce is None else nonce - work.cursor + 1
    work.cursor += done
    work.hashes += done
    meter.unreported += done
    if nonce is not None:
        meter.reports.send(("found", work.seq, meter.take(), nonce, work.hashes))
        return False
    if work.cursor >= work.end:
        meter.reports.send(("exhausted", work.seq, meter.take()))
        return False
    meter.tick(work.seq)
    return True
