"""Figure 9: a new node joins, syncing a long chain from one peer.

A source node is given a chain of ``--join-blocks`` blocks of 10 signed transactions
(``benchlib.p2p_chain``); then a fresh node starts with ``--peer <source>`` and the two
phases of its sync are timed on the joining node's own clock, from its log (millisecond
timestamps): the headers phase runs from "p2p: connected to" (the handshake, after which
the sync starts) to "p2p: downloading N blocks" (logged once every header is accepted);
the block phase from there until ``/v1/status`` shows the source's height and
``syncing: false`` (polled every 50 ms).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx

from benchlib.baselines import bare_verify_rate, bare_verify_run
from benchlib.p2p_chain import BuiltChain, build_chain, sample_message
from benchlib.procs import Server, node_server
from benchlib.report import Figure, Goal
from benchlib.timing import best_rate, human_rate

__all__ = ["JOIN_BLOCKS", "bench_join"]

SECTION = "p2p"
JOIN_BLOCKS = 10_000
TXS_PER_BLOCK = 10
BUILD_BUDGET_S = 240.0
"""Building the source chain stops here; the figures then say what size they used."""
SYNC_TIMEOUT_S = 900.0
POLL_S = 0.05
VERIFY_COUNT = 2_000
_LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \w+ [\w.]+: (.*)$")
_DOWNLOADING = re.compile(r"p2p: downloading (\d+) blocks")


def _log_time(stamp: str) -> float:
    """A ``logging`` asctime (local time, milliseconds) as seconds since the epoch."""
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()


@dataclass
class JoinRun:
    """What the joining node's log and status showed; times are epoch seconds."""

    connected_at: float | None = None
    headers_at: float | None = None
    downloading: int = 0
    done_at: float | None = None
    cpu_at_headers: float | None = None
    cpu_at_done: float | None = None
    source_cpu_at_headers: float | None = None
    source_cpu_at_done: float | None = None

    @property
    def headers_s(self) -> float:
        assert self.connected_at is not None and self.headers_at is not None
        return max(self.headers_at - self.connected_at, 0.001)

    @property
    def blocks_s(self) -> float:
        assert self.headers_at is not None and self.done_at is not None
        return self.done_at - self.headers_at


def _scan_log(server: Server, offset: int, run: JoinRun) -> int:
    """Note the phase lines written since ``offset``; the new offset."""
    with server.log_path.open("rb") as log:
        log.seek(offset)
        data = log.read()
    end = data.rfind(b"\n") + 1  # a line still being written is read next time
    for line in data[:end].decode(errors="replace").splitlines():
        match = _LOG_LINE.match(line)
        if match is None:
            continue
        stamp, message = match.groups()
        if run.connected_at is None and message.startswith("p2p: connected to"):
            run.connected_at = _log_time(stamp)
        downloading = _DOWNLOADING.match(message)
        if run.headers_at is None and downloading is not None:
            run.headers_at = _log_time(stamp)
            run.downloading = int(downloading.group(1))
    return offset + end


def watch_join(joiner: Server, source: Server, height: int) -> JoinRun:
    """Follow the joining node until it has the source's ``height`` and stopped syncing."""
    run = JoinRun()
    offset = 0
    deadline = time.monotonic() + SYNC_TIMEOUT_S
    with httpx.Client(base_url=joiner.url, timeout=10.0) as client:
        while True:
            offset = _scan_log(joiner, offset, run)
            if run.headers_at is not None and run.cpu_at_headers is None:
                run.cpu_at_headers = joiner.cpu_seconds()
                run.source_cpu_at_headers = source.cpu_seconds()
            status = client.get("/v1/status").raise_for_status().json()
            if status["height"] >= height and not status["syncing"]:
                run.done_at = time.time()
                run.cpu_at_done = joiner.cpu_seconds()
                run.source_cpu_at_done = source.cpu_seconds()
                break
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"the joining node reached height {status['height']} of {height} "
                    f"in {SYNC_TIMEOUT_S:.0f} s"
                )
            time.sleep(POLL_S)
    _scan_log(joiner, offset, run)
    if run.connected_at is None or run.headers_at is None:
        raise RuntimeError(
            f"no handshake or download line in the joining node's log:\n{joiner.log_tail()}"
        )
    return run


def _cpu_note(run: JoinRun, built: BuiltChain, message_len: int) -> str:
    """The block phase by CPU time: what a busy machine does not blur."""
    if run.cpu_at_headers is None or run.cpu_at_done is None:
        return "by CPU: unknown (no /proc)"
    bare_cpu = best_rate(
        bare_verify_run(message_len, VERIFY_COUNT), VERIFY_COUNT, clock=time.process_time
    )
    per_tx = (run.cpu_at_done - run.cpu_at_headers) / built.txs
    note = (
        f"by CPU: joining node {per_tx * 1000:.3f} ms per tx in the block phase, bare verify "
        f"{1000 / bare_cpu:.3f} ms: ratio {1 / (per_tx * bare_cpu):.2f}"
    )
    if run.source_cpu_at_headers is not None and run.source_cpu_at_done is not None:
        served = (run.source_cpu_at_done - run.source_cpu_at_headers) / built.blocks
        note += f"; the source spent {served * 1000:.2f} ms CPU per block served"
    return note


def _figures(run: JoinRun, built: BuiltChain, bare: float, cpu_note: str) -> list[Figure]:
    headers_rate = run.downloading / run.headers_s
    blocks_rate = built.blocks / run.blocks_s
    txs_rate = built.txs / run.blocks_s
    size = built.describe()
    headers_detail = (
        f"{run.downloading:,} headers in {run.headers_s * 1000:,.0f} ms, from the handshake to "
        f"'downloading {run.downloading} blocks' (joining node's log, 1 ms resolution)\n{size}"
    )
    blocks_detail = (
        f"{built.blocks:,} blocks ({built.txs:,} txs) in {run.blocks_s:.1f} s after the headers "
        f"(end seen by polling /v1/status every {POLL_S * 1000:.0f} ms); whole join "
        f"{run.headers_s + run.blocks_s:.1f} s from the handshake"
    )
    txs_detail = (
        f"{TXS_PER_BLOCK} dataset records a block, each signature checked by the joining node "
        "(none was in its pool)"
    )
    ratio_detail = (
        f"{txs_rate:,.0f} txs/s synced, bare verify {human_rate(bare)} (best of 3, this "
        f"process, after the sync)\n{cpu_note}"
    )
    return [
        Figure(
            "9a",
            SECTION,
            "join: headers/s (headers phase)",
            headers_rate,
            "/s",
            Goal(">=", 20_000),
            headers_detail,
        ),
        Figure(
            "9b", SECTION, "join: blocks/s (block phase)", blocks_rate, "/s", None, blocks_detail
        ),
        Figure("9c", SECTION, "join: txs/s (block phase)", txs_rate, "/s", None, txs_detail),
        Figure(
            "9d",
            SECTION,
            "join: txs/s / bare Ed25519 verify/s",
            txs_rate / bare,
            "x",
            Goal(">=", 0.5),
            ratio_detail,
        ),
    ]


def bench_join(workdir: Path, blocks: int = JOIN_BLOCKS) -> list[Figure]:
    """Figure 9: headers/s, blocks/s and txs/s of a node joining a ``blocks``-block chain."""
    with node_server(workdir, "source") as source, source.client() as client:
        built = build_chain(client, blocks, TXS_PER_BLOCK, BUILD_BUDGET_S)
        if built.blocks == 0:
            raise RuntimeError("no block was built within the budget")
        with node_server(workdir, "joiner", args=["--peer", source.url]) as joiner:
            run = watch_join(joiner, source, built.blocks)
    message_len = len(sample_message())
    bare = bare_verify_rate(message_len, VERIFY_COUNT)
    if run.downloading != built.blocks:
        raise RuntimeError(
            f"the joining node downloaded {run.downloading} of {built.blocks} blocks"
        )
    return _figures(run, built, bare, _cpu_note(run, built, message_len))
