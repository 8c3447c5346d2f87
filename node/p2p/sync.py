"""Headers-first sync: headers from one peer, then bodies from several, in a window.

The node asks a peer for the headers after its block locator (tip, 10 back one by one,
then doubling steps, genesis last), validates each run before any body is fetched (the
request for the next run is out while the chain worker parses, checks and adds this
one), and then downloads the missing bodies of the chain that peer announced, from every
connected peer that may have them (``policy.BlockDownload`` decides who gets asked
what), in runs of up to 16 blocks per request (``GET /p2p/blocks?hash=..``). A fetched
run is parsed and its signatures checked in the node's worker processes
(``node.checkpool``), then goes to the chain without holding up the next request, and
runs that arrive while the chain worker is busy are stored and connected together
(``Node.submit_blocks``), one commit for hundreds of blocks. A peer that sends invalid
data is discouraged; one that does not answer is replaced.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from consensus.block import Header
from consensus.chain import Entry
from consensus.errors import InvalidBlock
from consensus.params import ConsensusParams
from consensus.validation import check_header
from node.chainstate import BlockOutcome
from node.checkpool import BadRun, BlockRun
from node.p2p.client import PeerRefused, PeerUnavailable
from node.p2p.headersync import (
    MAX_HEADERS,
    download_peers,
    header_fault,
    missing_bodies,
    next_locator,
    run_arrived,
    sync_target,
)
from node.p2p.peers import Peer
from node.p2p.policy import BlockDownload

if TYPE_CHECKING:
    from node.p2p.client import PeerClient
    from node.ports import ChainPort

__all__ = ["MAX_HEADERS", "HeaderBatch", "Misbehaved", "Sync", "SyncHost", "read_header_run"]

log = logging.getLogger(__name__)

BLOCK_FETCH_TIMEOUT_S = 15.0


class Misbehaved(Exception):
    """The peer sent data that proves it broke the protocol; ``reason`` says how."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class SyncHost(Protocol):
    """What a sync needs of the p2p service around it."""

    node: ChainPort
    client: PeerClient | None

    def peers(self) -> list[Peer]: ...

    def failed(self, peer: Peer, why: str) -> None: ...

    def discourage(self, peer: Peer, reason: str) -> None: ...


class Sync:
    """One sync at a time (``lock``), driven by the p2p service."""

    def __init__(self, p2p: SyncHost) -> None:
        self.p2p = p2p
        self.lock = asyncio.Lock()

    async def run(self, peer: Peer) -> None:
        """Headers first, then the blocks of the best header chain, from several peers."""
        async with self.lock:
            try:
                last = await self._sync_headers(peer)
                await self._download_blocks(peer, last)
            except Misbehaved as exc:
                self.p2p.discourage(peer, exc.reason)
            except (PeerUnavailable, PeerRefused) as exc:
                self.p2p.failed(peer, str(exc))
            finally:
                await self.p2p.node.set_syncing(False)

    async def _sync_headers(self, peer: Peer) -> Entry | None:
        """Fetch and accept the peer's headers past our tip; the last one accepted.

        Runs are fetched (``_fetch_header_runs``) while the chain worker parses, checks and
        adds the one before: the peer serves run k+1 while this node adds run k."""
        chain = self.p2p.node.chain
        locator = await self.p2p.node.run(chain.tree.locator, chain.tip)
        runs: asyncio.Queue[list[Any] | Exception | None] = asyncio.Queue(maxsize=1)
        fetcher = asyncio.create_task(self._fetch_header_runs(peer, locator, runs))
        last: Entry | None = None
        try:
            while True:
                hexes = await runs.get()
                if hexes is None:
                    return last
                if isinstance(hexes, Exception):
                    raise hexes
                accepted, complete = await self.p2p.node.run(self._accept_header_run, hexes)
                last = accepted or last
                if not complete:
                    return last  # a too-new header: the rest waits
        finally:
            _discard(fetcher)

    async def _fetch_header_runs(
        self,
        peer: Peer,
        locator: list[str],
        runs: asyncio.Queue[list[Any] | Exception | None],
    ) -> None:
        """Put the peer's runs of headers (as sent) on ``runs``, then None (or the failure).

        After a full run the next request goes out at once, located by the run's last
        header; ``runs`` holds one run, so at most one more is fetched ahead of the chain."""
        request = asyncio.ensure_future(self._headers_after(peer, locator))
        try:
            while True:
                hexes = await request
                if not hexes:
                    break
                ahead = next_locator(len(hexes), _last_hash(hexes))
                if ahead is not None:
                    request = asyncio.ensure_future(self._headers_after(peer, ahead))
                await runs.put(hexes)
                if ahead is None:
                    break
            await runs.put(None)
        except Exception as exc:  # the sync decides what the peer's failure means
            await runs.put(exc)
        finally:
            _discard(request)

    async def _headers_after(self, peer: Peer, locator: list[str]) -> list[Any]:
        assert self.p2p.client is not None
        answer = await self.p2p.client.call(
            "POST",
            f"{peer.url}/p2p/headers",
            json={"locator": locator, "limit": MAX_HEADERS},
            session=peer.token,
        )
        hexes = answer.get("headers") if isinstance(answer, dict) else None
        if not isinstance(hexes, list) or len(hexes) > MAX_HEADERS:
            raise Misbehaved("malformed headers answer")
        return hexes

    def _accept_header_run(self, hexes: list[Any]) -> tuple[Entry | None, bool]:
        """Parse, check and add a run in one storage transaction (on the chain worker;
        what passed is kept on a failure): the last header accepted, and whether the
        whole run was."""
        batch = read_header_run(hexes, self.p2p.node.params)
        failure: Misbehaved | None = None
        with self.p2p.node.store.transaction(fsync=False):
            try:
                last = self._accept_headers(batch)
            except Misbehaved as exc:  # commit what the tree already holds, then punish
                failure, last = exc, None
        if failure is not None:
            raise failure
        return last, last is not None and last.hash == batch.headers[-1].hash

    def _accept_headers(self, batch: HeaderBatch) -> Entry | None:
        """Add a parsed run whose first ``batch.checked`` headers passed ``check_header``.
        None: stop here (too new)."""
        checked = batch.headers[: batch.checked]
        run = self.p2p.node.chain.process_headers(checked, checked=True)
        last = run.accepted[-1] if run.accepted else None
        fault = header_fault(checked, len(run.accepted), run.failure)
        if fault is not None:
            raise Misbehaved(fault) from run.failure
        if run.failure is None and batch.failure is not None:
            raise Misbehaved(batch.failure)
        return last  # a too-new header (not misbehaviour) stops the run here

    def _blocks_to_fetch(self, target: Entry) -> list[str]:
        """Bodies missing on the way to ``target`` (a header the peer sent), lowest first;
        nothing unless that chain has more work than ours. Only what this peer claims to
        have is asked of it, so headers nobody serves cannot send the sync astray."""
        chain = self.p2p.node.chain
        if target.chain_work <= chain.tip.chain_work:
            return []
        _, connect = chain.tree.reorg_path(chain.tip, target)
        return missing_bodies(target, chain.tip, connect)

    async def _download_blocks(self, first: Peer, target: Entry | None) -> None:
        target = sync_target(target, self.p2p.node.chain.tree.get(first.best_hash or ""))
        if target is None:
            return
        needed = await self.p2p.node.run(self._blocks_to_fetch, target)
        if not needed:
            return
        await self.p2p.node.set_syncing(True)
        plan = BlockDownload(needed)
        peers = download_peers(first, self.p2p.peers())
        log.info("p2p: downloading %d blocks from %d peers", len(needed), len(peers))
        connecting: set[asyncio.Task[None]] = set()
        workers = [
            self._fetch_loop(peer, plan, connecting) for peer in peers for _ in range(plan.slots)
        ]
        await asyncio.gather(*workers)
        await asyncio.gather(*connecting)
        if plan.remaining():
            log.warning("p2p: block download stopped with %d blocks missing", plan.remaining())

    async def _fetch_loop(
        self, peer: Peer, plan: BlockDownload, connecting: set[asyncio.Task[None]]
    ) -> None:
        """One of a peer's download slots: fetch a run and hand it to the chain (without
        waiting: the next request goes out at once), until the plan is done. A peer that
        cannot serve a run's first block is left to the others."""
        while not plan.finished and peer.connected:
            hashes = plan.next_for(peer.url)
            if not hashes:  # window full, or the rest is in flight elsewhere
                await asyncio.sleep(0.02)
                continue
            try:
                run = await self._fetch_run(peer, hashes)
            except PeerRefused as exc:
                plan.failed(hashes)
                log.info("p2p: %s refused blocks from %s: %s", peer.url, hashes[0], exc)
                return
            except PeerUnavailable as exc:
                plan.failed(hashes)
                self.p2p.failed(peer, str(exc))
                return
            except Misbehaved as exc:
                plan.failed(hashes)
                self.p2p.discourage(peer, exc.reason)
                return
            sizes = [(b.hash, sum(tx.size for tx in b.transactions)) for b in run.blocks]
            run_arrived(plan, hashes, sizes)
            if not run.blocks:
                log.info("p2p: %s does not have block %s", peer.url, hashes[0])
                return
            task = asyncio.create_task(self._connect_run(peer, run, plan))
            connecting.add(task)
            task.add_done_callback(connecting.discard)

    async def _fetch_run(self, peer: Peer, hashes: list[str]) -> BlockRun:
        """The blocks ``hashes`` (the peer may send a prefix of them), parsed and their
        signatures checked in the node's worker processes."""
        assert self.p2p.client is not None
        body = await self.p2p.client.fetch(
            f"{peer.url}/p2p/blocks",
            params=[("hash", h) for h in hashes],
            timeout=BLOCK_FETCH_TIMEOUT_S,
            session=peer.token,
        )
        try:
            run = await self.p2p.node.checks.read_blocks(body, hashes)
        except BadRun as exc:
            raise Misbehaved(exc.reason) from exc
        for block in run.blocks:
            peer.known_blocks.add(block.hash)
        return run

    async def _connect_run(self, peer: Peer, run: BlockRun, plan: BlockDownload) -> None:
        """Submit a fetched run; a block the chain refuses discourages its sender."""
        blocks = run.blocks
        try:
            results = await self.p2p.node.submit_blocks(blocks, verified=run.verified, synced=True)
        except Exception:  # the node's own trouble (storage, shutdown): stop the download
            log.exception("p2p: storing %d synced blocks failed", len(blocks))
            plan.abandon()
            return
        for position, result in enumerate(results):
            if result.outcome is BlockOutcome.REJECTED:
                plan.failed(b.hash for b in blocks[position:])
                self.p2p.discourage(peer, f"invalid block {result.hash}: {result.code}")
                return
            plan.received(result.hash)


@dataclass(frozen=True)
class HeaderBatch:
    """A peer's run of headers, parsed and linked; the first ``checked`` passed
    ``check_header``, and ``failure`` says why the next one did not (if one did not)."""

    headers: list[Header]
    checked: int
    failure: str | None = None


def read_header_run(hexes: Sequence[Any], params: ConsensusParams) -> HeaderBatch:
    """Parse the headers of an answer to ``POST /p2p/headers``: each must be a header in
    hex and follow the one before it, or the run is ``Misbehaved`` (and none of it is
    used); then ``check_header`` (version, proof of work) of each, up to the first that
    fails: the headers before that one are still good to use."""
    headers: list[Header] = []
    for text in hexes:
        if not isinstance(text, str):
            raise Misbehaved("header is not a hex string")
        try:
            header = Header.from_hex(text)
        except InvalidBlock as exc:
            raise Misbehaved(f"{exc.code}: {exc.message}") from None
        if headers and header.prev_hash != headers[-1].hash:
            raise Misbehaved("non-connecting headers: the run is not a chain")
        headers.append(header)
    for position, header in enumerate(headers):
        try:
            check_header(header, params)
        except InvalidBlock as exc:
            return HeaderBatch(headers, position, f"invalid header {header.hash}: {exc.code}")
    return HeaderBatch(headers, len(headers))


def _last_hash(hexes: list[Any]) -> str | None:
    """The hash of a run's last header, if it is one (the run is checked later)."""
    try:
        return Header.from_hex(hexes[-1]).hash if isinstance(hexes[-1], str) else None
    except InvalidBlock:
        return None


def _discard(task: asyncio.Future[Any]) -> None:
    """Cancel a request nobody will wait for, and take its failure, if it failed."""
    if not task.done():
        task.cancel()
    elif not task.cancelled():
        task.exception()
