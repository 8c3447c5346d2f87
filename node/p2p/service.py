"""The peer-to-peer service: handshakes, discovery, inbound messages, punishment.

Gossip is ``gossip.Gossip``'s and headers-first sync ``sync.Sync``'s; decisions live in
``peers.PeerTable`` and ``policy``; this module moves messages. Every outbound call goes
through ``PeerClient`` with a timeout, from tasks of its own, so a dead or slow peer never
holds up the node or its API.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine, MutableMapping
from typing import TYPE_CHECKING, Any

from consensus.block import Block
from consensus.errors import InvalidBlock
from node.chainstate import BlockOutcome
from node.errors import NetworkInactive, NodeError
from node.p2p.client import PeerClient, PeerRefused, PeerUnavailable
from node.p2p.dns import DnsDiscovery
from node.p2p.gossip import Gossip
from node.p2p.peers import Direction, Peer, PeerTable
from node.p2p.policy import punishes_tx
from node.p2p.sync import Sync
from node.version import VERSION

if TYPE_CHECKING:
    from node.daemon import Node

__all__ = ["P2P", "PeerDiscouraged", "PROTOCOL_VERSION"]

log = logging.getLogger(__name__)

PROTOCOL_VERSION = 1
MAINTAIN_EVERY_S = 2.0
REFRESH_EVERY_S = 15.0


class PeerDiscouraged(NodeError):
    status = 403
    code = "peer-discouraged"


class P2P:
    def __init__(self, node: Node) -> None:
        self.node = node
        settings = node.settings
        self.url = settings.public_url
        self.table = PeerTable(
            self_url=self.url, max_outbound=settings.max_outbound, max_inbound=settings.max_inbound
        )
        self.client: PeerClient | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.sync = Sync(self)
        self.gossip = Gossip(self)
        self._maintainer: asyncio.Task[None] | None = None

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        self.client = PeerClient(self.node.node_id, self.url)
        for row in await self.node.run(self.node.store.peers_load):
            peer = self.table.learn(row["url"], source=row.get("source") or "stored")
            if peer is not None:
                peer.node_id = row.get("node_id")
                peer.last_seen = row.get("last_seen")
                peer.failures = row.get("failures") or 0
                peer.discouraged_until = row.get("discouraged_until") or 0
                peer.reason = row.get("reason")
        for url in self.node.settings.peers:
            peer = self.table.learn(url, source="seed")
            if peer is not None:
                peer.source = "seed"
        if self.node.settings.peer_dns:
            # DNS names only feed addresses to dial; the handshake says who is there.
            dns = DnsDiscovery(
                self.node.settings.dns_names,
                learn=lambda url: self.table.learn(url, source="dns"),
                every_s=self.node.settings.peer_dns_interval,
                own_port=self.node.settings.port,
            )
            self._spawn(dns.run(), "peer-dns")
        self.node.block_listeners.append(self.gossip.relay_block)
        self.node.tx_listeners.append(self.gossip.relay_txs)
        self._maintainer = asyncio.create_task(self._maintain(), name="p2p-maintain")
        log.info(
            "p2p: %d known peers at start (%d seeds), listening as %s",
            len(self.table),
            len(self.node.settings.peers),
            self.url,
        )

    async def stop(self) -> None:
        tasks = [t for t in (self._maintainer, *self.gossip.senders(), *self._tasks) if t]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.client is not None:
            await self.client.aclose()

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def active(self) -> bool:
        return self.node.network_active and not self.node.closing

    def peer_count(self) -> int:
        return len(self.table.connected())

    def hello(self) -> dict[str, Any]:
        tip = self.node.chain.tip
        return {
            "network": self.node.params.network,
            "genesis_hash": self.node.genesis_hash,
            "node_id": self.node.node_id,
            "version": VERSION,
            "protocol": PROTOCOL_VERSION,
            "listen_url": self.url,
            "best": {"hash": tip.hash, "height": tip.height, "chain_work": f"{tip.chain_work:x}"},
        }

    # --- peers ---------------------------------------------------------------------------

    def _persist(self, peer: Peer) -> None:
        fields = {
            "node_id": peer.node_id,
            "last_seen": peer.last_seen,
            "failures": peer.failures,
            "discouraged_until": peer.discouraged_until,
            "reason": peer.reason,
            "source": peer.source,
        }
        self._spawn(
            self.node.run(self.node.store.peer_upsert, peer.url, **fields), f"persist {peer.url}"
        )

    def _check_hello(self, msg: Any) -> str | None:
        """Why a handshake is refused, or None."""
        if not isinstance(msg, dict):
            return "malformed hello"
        if msg.get("network") != self.node.params.network:
            return f"wrong network {msg.get('network')!r}"
        if msg.get("genesis_hash") != self.node.genesis_hash:
            return f"wrong genesis {msg.get('genesis_hash')!r}"
        if msg.get("node_id") == self.node.node_id:
            return "connected to itself"
        return None

    def _note_best(self, peer: Peer, msg: dict[str, Any]) -> None:
        best = msg.get("best")
        if isinstance(best, dict):
            peer.best_hash = best.get("hash") if isinstance(best.get("hash"), str) else None
            height = best.get("height")
            peer.height = height if isinstance(height, int) else None
            try:
                peer.chain_work = int(str(best.get("chain_work", "0")), 16)
            except ValueError:
                peer.chain_work = 0
        node_id = msg.get("node_id")
        peer.node_id = node_id if isinstance(node_id, str) else peer.node_id

    async def connect(self, peer: Peer) -> bool:
        """Handshake with ``peer``; then learn its peers and sync if it is ahead."""
        assert self.client is not None
        now = self.node.clock()
        try:
            answer = await self.client.call("POST", f"{peer.url}/p2p/hello", json=self.hello())
        except (PeerUnavailable, PeerRefused) as exc:
            self.failed(peer, str(exc))
            return False
        refusal = self._check_hello(answer)
        if refusal is not None:
            if refusal == "connected to itself":
                self.table.forget(peer.url)
                return False
            self.discourage(peer, refusal)
            return False
        self._note_best(peer, answer)
        self.table.connected_ok(peer, now, direction=Direction.OUTBOUND)
        self._persist(peer)
        self.gossip.open(peer)
        log.info("p2p: connected to %s (%s) at height %s", peer.url, peer.node_id, peer.height)
        self._spawn(self._discover(peer), f"discover {peer.url}")
        self._maybe_sync(peer)
        return True

    def failed(self, peer: Peer, why: str) -> None:
        was = peer.connected
        forgotten = self.table.failed(peer, self.node.clock())
        self.gossip.close(peer.url)
        if was:
            log.info("p2p: lost %s: %s", peer.url, why)
        if forgotten:
            self._spawn(self.node.run(self.node.store.peer_delete, peer.url), "forget")
        else:
            self._persist(peer)

    def discourage(self, peer: Peer, reason: str) -> None:
        """Disconnect and refuse ``peer`` for the cool-down, and say why."""
        log.warning("p2p: discouraging %s: %s", peer.url, reason)
        self.table.discourage(peer, reason, self.node.clock())
        self.gossip.close(peer.url)
        self._persist(peer)

    def discourage_url(self, url: str | None, reason: str) -> None:
        peer = self.table.learn(url, source="inbound") if url else None
        if peer is not None:
            self.discourage(peer, reason)

    async def _discover(self, peer: Peer) -> None:
        assert self.client is not None
        try:
            answer = await self.client.call("GET", f"{peer.url}/p2p/peers")
        except (PeerUnavailable, PeerRefused):
            return
        urls = answer.get("peers", []) if isinstance(answer, dict) else []
        for url in urls[:100]:
            if isinstance(url, str):
                self.table.learn(url, source=peer.url)

    async def disconnect(self, url: str) -> bool:
        peer = self.table.get(url.rstrip("/"))
        if peer is None:
            return False
        peer.connected = False
        peer.next_try = self.node.clock() + 60_000
        self.gossip.close(peer.url)
        return True

    async def add_peer(self, url: str) -> bool:
        """The operator's ``POST /v1/admin/peers``: connect now, lifting a discouragement,
        even with every outbound slot taken (as Bitcoin's ``addnode onetry`` does)."""
        peer = self.table.learn(url, source="seed")
        if peer is None:
            return False
        peer.discouraged_until = 0
        peer.next_try = 0
        return await self.connect(peer)

    async def set_active(self, active: bool) -> None:
        """Like Bitcoin's setnetworkactive: off drops every connection; on reconnects."""
        self.node.network_active = active
        if not active:
            for peer in self.table.connected():
                peer.connected = False
                self.gossip.close(peer.url)
            return
        for peer in self.table.all():
            peer.next_try = 0
        await self._dial()

    async def _maintain(self) -> None:
        """Keep the outbound slots filled, refresh peers' tips, and sync when behind."""
        last_refresh = 0.0
        loop = asyncio.get_running_loop()
        while True:
            try:
                if self.active:
                    await self._dial()
                    if loop.time() - last_refresh > REFRESH_EVERY_S:
                        last_refresh = loop.time()
                        for peer in self.table.connected():
                            self._spawn(self._refresh(peer), f"refresh {peer.url}")
            except Exception:
                log.exception("p2p maintenance failed")
            await asyncio.sleep(MAINTAIN_EVERY_S)

    async def _dial(self) -> None:
        peers = self.table.to_dial(self.node.clock())
        if peers:
            await asyncio.gather(*(self.connect(p) for p in peers))

    async def _refresh(self, peer: Peer) -> None:
        assert self.client is not None
        try:
            answer = await self.client.call("POST", f"{peer.url}/p2p/hello", json=self.hello())
        except (PeerUnavailable, PeerRefused) as exc:
            self.failed(peer, str(exc))
            return
        if self._check_hello(answer) is None:
            self._note_best(peer, answer)
            peer.last_seen = self.node.clock()
            self._maybe_sync(peer)

    # --- inbound messages (called by the /p2p routes) -------------------------------------

    def sender(self, url: str | None) -> Peer | None:
        """The peer behind a request; PeerDiscouraged/NetworkInactive refuse it."""
        if not self.active:
            raise NetworkInactive("p2p networking is switched off on this node")
        peer = self.table.get(url.rstrip("/")) if url else None
        if peer is not None and peer.discouraged(self.node.clock()):
            raise PeerDiscouraged(f"discouraged: {peer.reason}")
        return peer

    def on_hello(self, msg: Any, listen_url: str | None) -> dict[str, Any]:
        self.sender(listen_url)
        refusal = self._check_hello(msg)
        url = msg.get("listen_url") if isinstance(msg, dict) else None
        if refusal is not None:
            if refusal != "connected to itself":
                log.warning("p2p: refused hello from %s: %s", url or listen_url, refusal)
                self.discourage_url(url if isinstance(url, str) else listen_url, refusal)
            raise PeerDiscouraged(refusal, code="hello-refused")
        now = self.node.clock()
        peer = self.table.accept_inbound(url, now) if isinstance(url, str) else None
        if peer is not None:
            self._note_best(peer, msg)
            was_connected = peer.connected
            self.table.connected_ok(peer, now, direction=Direction.INBOUND)
            self.gossip.open(peer)
            if not was_connected:
                self._persist(peer)
                log.info("p2p: inbound peer %s (%s)", peer.url, peer.node_id)
            self._maybe_sync(peer)
        return self.hello()

    async def on_block(self, obj: Any, listen_url: str | None) -> dict[str, Any]:
        peer = self.sender(listen_url)
        try:
            block = Block.from_json(obj)
        except InvalidBlock as exc:
            self._punish(peer, listen_url, f"{exc.code}: {exc.message}")
            return {"status": "rejected", "code": exc.code, "message": exc.message}
        if peer is not None:
            peer.known_blocks.add(block.hash)
            peer.last_seen = self.node.clock()
        result = await self.node.submit_block(block)
        if result.outcome is BlockOutcome.REJECTED:
            self._punish(peer, listen_url, f"invalid block {block.hash}: {result.code}")
        elif result.outcome is BlockOutcome.NEED_PARENTS:
            if peer is not None and peer.connected:
                self._maybe_sync(peer, force=True)
            elif listen_url and self.table.free_outbound():
                # A stranger with news: shake hands (which syncs if it is ahead) in a free
                # outbound slot; with none free, the block comes again through our peers.
                stranger = self.table.learn(listen_url, source="inbound")
                if stranger is not None:
                    self._spawn(self.connect(stranger), f"connect {stranger.url}")
        out: dict[str, Any] = {"status": result.outcome.value}
        if result.code:
            out.update(code=result.code, message=result.message)
        return out

    async def on_transactions(self, objs: list[Any], listen_url: str | None) -> dict[str, Any]:
        peer = self.sender(listen_url)
        results = await self.node.submit_transactions(objs, source=peer.url if peer else None)
        out = []
        for result in results:
            if peer is not None and result.txid:
                peer.known_txs.add(result.txid)
            item: dict[str, Any] = {"txid": result.txid, "status": result.status}
            if result.error is not None:
                item["code"] = result.error.code
                if punishes_tx(result.error.code):
                    self._punish(peer, listen_url, f"invalid transaction: {result.error.code}")
            out.append(item)
        return {"results": out}

    def _punish(self, peer: Peer | None, listen_url: str | None, reason: str) -> None:
        if peer is not None:
            self.discourage(peer, reason)
        else:
            self.discourage_url(listen_url, reason)

    async def on_headers(self, locator: list[str], limit: int) -> list[str]:
        self_chain = self.node.chain

        def after() -> list[str]:
            entries = self_chain.tree.headers_after_locator(self_chain.tip, locator, limit)
            return [e.hash for e in entries]

        hashes = await self.node.run(after)
        with self.node.reader() as reader:
            return [raw.hex() for raw in reader.header_raws(hashes)]

    def oversize(self, scope: MutableMapping[str, Any]) -> None:
        """An oversized body on a /p2p path is misbehaviour (the API's clients are not)."""
        if str(scope.get("path", "")).startswith("/p2p/"):
            for name, value in scope.get("headers", ()):
                if name == b"x-ailedger-listen":
                    self.discourage_url(value.decode("latin-1"), "oversized message")

    def good_addresses(self) -> list[str]:
        return self.table.good_addresses(self.node.clock())

    # --- sync ----------------------------------------------------------------------------

    def _maybe_sync(self, peer: Peer, *, force: bool = False) -> None:
        """Sync from ``peer`` when it claims more work than our tip (or was told to)."""
        if not self.active or self.sync.lock.locked():
            return
        if force or peer.chain_work > self.node.chain.tip.chain_work:
            self._spawn(self.sync.run(peer), f"sync {peer.url}")
