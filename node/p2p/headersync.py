"""Headers-first sync decisions without I/O (Bitcoin's ``HeadersSyncState`` in spirit):
what to ask next after a run of headers, what a failed run proves, which chain's bodies
to download, and from whom. The node's sync (``node.p2p.sync``) and the simulator both
carry these out; ``policy.BlockDownload`` holds the download window itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from consensus.block import Header
from consensus.chain import Entry, Status
from consensus.errors import BlockNotFound, InvalidBlock
from node.p2p.peers import Peer
from node.p2p.policy import BlockDownload

__all__ = [
    "MAX_HEADERS",
    "download_peers",
    "header_fault",
    "missing_bodies",
    "next_locator",
    "run_arrived",
    "sync_target",
]

MAX_HEADERS = 2000
"""Headers in one answer to ``POST /p2p/headers``, at most; a full run means more follow."""


def next_locator(count: int, last_hash: str | None) -> list[str] | None:
    """The locator of the request after a run of ``count`` headers ending at
    ``last_hash``: that hash when the run was full (the peer has more), None when it was
    the peer's last (or its last header is not one)."""
    return [last_hash] if count == MAX_HEADERS and last_hash is not None else None


def header_fault(run: Sequence[Header], accepted: int, failure: Exception | None) -> str | None:
    """What adding ``run`` proves about its sender, given how many headers the chain
    accepted and why it stopped: a run that does not connect, or an invalid header, is
    misbehaviour; a too-new header (or none) is not."""
    if isinstance(failure, BlockNotFound):
        return "non-connecting headers: unknown parent"
    if isinstance(failure, InvalidBlock):
        return f"invalid header {run[accepted].hash}: {failure.code}"
    return None


def sync_target(last: Entry | None, announced: Entry | None) -> Entry | None:
    """The header whose chain to download: the peer's announced best when it is known
    and has more work than the last header its runs gave, else that last header."""
    if announced is not None and (last is None or announced.chain_work > last.chain_work):
        return announced
    return last


def missing_bodies(target: Entry, tip: Entry, connect: Iterable[Entry]) -> list[str]:
    """Bodies to fetch on the way to ``target`` (``connect``: the reorg path from ``tip``),
    lowest first; nothing unless that chain has more work than ours."""
    if target.status is Status.INVALID or target.chain_work <= tip.chain_work:
        return []
    return [e.hash for e in connect if e.status is Status.HEADER]


def download_peers(first: Peer, connected: Iterable[Peer]) -> list[Peer]:
    """Whom to download from: the peer synced from, then every connected peer that
    claims to be at least as high (what it announced is what it is asked for)."""
    return [first] + [
        p for p in connected if p is not first and (p.height or 0) >= (first.height or 0)
    ]


def run_arrived(plan: BlockDownload, asked: Sequence[str], got: Sequence[tuple[str, int]]) -> None:
    """A run came back: each block in it (hash, size) is fetched, the rest of what was
    asked goes back in the queue for another peer."""
    for block_hash, size in got:
        plan.fetched(block_hash, size)
    plan.failed(asked[len(got) :])
