"""The peer-to-peer service: the asyncio/httpx shell around the protocol core.

What to do lives in ``protocol.PeerProtocol`` (handshakes, sessions, whom to dial, relay,
punishment); this module feeds it events (a reply came, a request failed, the timer
fired, the chain moved) and carries out the actions it returns: HTTP calls through
``PeerClient`` with a timeout, from tasks of its own (a dead or slow peer never holds up
the node or its API), the per-peer senders of ``gossip.Gossip``, the headers-first sync
of ``sync.Sync``, and the peers' rows in the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Coroutine, Mapping, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any

import httpx

from node.errors import NetworkInactive, NodeError
from node.p2p.client import SESSION_HEADER, PeerClient, PeerRefused, PeerUnavailable
from node.p2p.gossip import Gossip
from node.p2p.identity import load_or_create_node_key
from node.p2p.messages import Best, Hello, HelloAnswer, HelloFinish, MalformedMessage
from node.p2p.peers import Peer, PeerTable
from node.p2p.protocol import (
    Action,
    Dial,
    Disconnect,
    Discourage,
    Discover,
    Finish,
    Forget,
    PeerProtocol,
    Persist,
    Refused,
    Send,
    Sync,
)
from node.p2p.sync import Sync as SyncRunner
from node.version import VERSION

if TYPE_CHECKING:
    from consensus.block import Block
    from consensus.tx import Transaction
    from node.chainstate import Reorg
    from node.ports import ChainPort

__all__ = ["P2P", "PROTOCOL_VERSION", "PeerDiscouraged"]

log = logging.getLogger(__name__)

PROTOCOL_VERSION = 1
MAINTAIN_EVERY_S = 2.0


class PeerDiscouraged(NodeError):
    status = 403
    code = "peer-discouraged"


class _ChainView:
    """The chain as the protocol core sees it (``protocol.ChainView``)."""

    def __init__(self, node: ChainPort) -> None:
        self._node = node

    def best(self) -> Best:
        tip = self._node.chain.tip
        return Best(tip.hash, tip.height, tip.chain_work)

    def is_syncing(self) -> bool:
        return self._node.syncing


class P2P:
    """The node's p2p layer: it joins the node's services and subscribes to its events
    (blocks connected and transactions accepted are relayed; the peer count is a gauge)."""

    def __init__(
        self, node: ChainPort, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.node = node
        self._transport = transport
        self.url = node.settings.public_url.rstrip("/")
        self.core: PeerProtocol | None = None
        self.client: PeerClient | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.sync = SyncRunner(self)
        self.gossip = Gossip(self.failed)
        self._maintainer: asyncio.Task[None] | None = None
        node.services.append(self)
        node.block_listeners.append(self.relay_block)
        node.tx_listeners.append(self.relay_txs)
        node.gauges.append(lambda: node.metrics.peers.set(self.peer_count()))

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        settings = self.node.settings
        key = load_or_create_node_key(settings.data_dir)
        self.node.node_id = key.node_id
        self.core = PeerProtocol(
            key=key,
            chain=_ChainView(self.node),
            network=self.node.params.network,
            genesis_hash=self.node.genesis_hash,
            listen_url=self.url,
            rng=random.SystemRandom(),
            version=VERSION,
            max_outbound=settings.max_outbound,
            max_inbound=settings.max_inbound,
        )
        self.client = self.gossip.client = PeerClient(
            key.node_id, self.url, transport=self._transport
        )
        rows = await self.node.run(self.node.store.peers_load)
        self.do(self.core.load(rows, settings.peers, self.node.clock()))
        self._maintainer = asyncio.create_task(self._maintain(), name="p2p-maintain")
        log.info(
            "p2p: node %s, %d known peers at start (%d seeds), listening as %s",
            key.node_id,
            len(self.table),
            len(settings.peers),
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
    def protocol(self) -> PeerProtocol:
        assert self.core is not None, "the p2p service has not started"
        return self.core

    @property
    def table(self) -> PeerTable:
        return self.protocol.table

    @property
    def active(self) -> bool:
        return self.node.network_active and not self.node.closing

    def peers(self) -> list[Peer]:
        """The connected peers (their addresses verified)."""
        return self.protocol.peers()

    def peer_count(self) -> int:
        return len(self.core.peers()) if self.core is not None else 0

    def good_addresses(self) -> list[str]:
        return self.protocol.good_addresses(self.node.clock())

    # --- carrying out the core's actions ---------------------------------------------------

    def do(self, actions: Sequence[Action], items: Mapping[str, Any] | None = None) -> None:
        """Carry out ``actions``; ``items`` holds the blocks and transactions ``Send`` names."""
        for action in actions:
            if isinstance(action, Send):
                item = (items or {}).get(action.item)
                if item is not None:
                    self.gossip.enqueue(action.url, action.kind, item)
            elif isinstance(action, Dial):
                self._spawn(self._handshake(action), f"hello {action.url}")
            elif isinstance(action, Finish):  # only ever returned inside _handshake
                log.error("p2p: a finish outside a handshake: %s", action.url)
            elif isinstance(action, Discover):
                self._spawn(self._discover(action), f"discover {action.url}")
            elif isinstance(action, Sync):
                self._start_sync(action)
            elif isinstance(action, Discourage):
                log.warning(
                    "p2p: discouraging %s (%s): %s", action.node_id, action.url, action.reason
                )
            elif isinstance(action, Disconnect):
                self.gossip.close(action.url)
            elif isinstance(action, Persist):
                self._persist(action.url)
            elif isinstance(action, Forget):
                self._spawn(self.node.run(self.node.store.peer_delete, action.url), "forget")

    def _persist(self, url: str) -> None:
        peer = self.table.get(url)
        if peer is None:
            return
        fields = {
            "node_id": peer.node_id,
            "last_seen": peer.last_seen,
            "failures": peer.failures,
            "discouraged_until": peer.discouraged_until,
            "reason": peer.reason,
            "source": peer.source,
        }
        self._spawn(self.node.run(self.node.store.peer_upsert, url, **fields), f"persist {url}")

    async def _handshake(self, dial: Dial) -> bool:
        """Hello, check the answer's proof, finish, and take the session it opens."""
        assert self.client is not None
        core, url = self.protocol, dial.url
        try:
            answer = HelloAnswer.from_json(
                await self.client.call("POST", f"{url}/p2p/hello", json=dial.hello.to_json())
            )
            actions = core.answered(url, answer, self.node.clock())
            finish = next((a for a in actions if isinstance(a, Finish)), None)
            self.do([a for a in actions if a is not finish])
            if finish is None:
                return False
            reply = await self.client.call(
                "POST", f"{url}/p2p/hello/finish", json=finish.finish.to_json()
            )
            token = reply.get("session") if isinstance(reply, dict) else None
            if not isinstance(token, str):
                raise MalformedMessage("no session token in the answer")
        except (PeerUnavailable, PeerRefused, MalformedMessage) as exc:
            self.do(core.dial_failed(url, str(exc), self.node.clock()))
            return False
        opened = core.opened(url, token, self.node.clock())
        self.do(opened)
        peer = self.table.get(url)
        if peer is not None and peer.connected and not self.gossip.is_open(url):
            self.gossip.open(peer)
            log.info("p2p: connected to %s (%s) at height %s", url, peer.node_id, peer.height)
        return peer is not None and peer.connected

    async def _discover(self, action: Discover) -> None:
        try:
            answer = await self.call(action.node_id, "GET", "/p2p/peers")
        except (PeerUnavailable, PeerRefused):
            return
        urls = answer.get("peers", []) if isinstance(answer, dict) else []
        if isinstance(urls, list):
            self.do(self.protocol.addresses_received(action.node_id, urls, self.node.clock()))

    def _start_sync(self, action: Sync) -> None:
        if not self.active or self.sync.lock.locked():
            return
        peer = self.protocol.peer(action.node_id)
        if peer is not None:
            self._spawn(self.sync.run(peer), f"sync {peer.url}")

    # --- calls to connected peers ------------------------------------------------------------

    def _link(self, node_id: str) -> Peer:
        peer = self.protocol.peer(node_id)
        if peer is None or peer.token is None:
            raise PeerUnavailable(f"not connected to {node_id}")
        return peer

    async def call(self, node_id: str, method: str, path: str, **kwargs: Any) -> Any:
        """A JSON call to the connected peer ``node_id`` within our session there."""
        assert self.client is not None
        peer = self._link(node_id)
        return await self.client.call(method, f"{peer.url}{path}", session=peer.token, **kwargs)

    async def get(
        self, node_id: str, path: str, *, params: Sequence[tuple[str, str]] = ()
    ) -> bytes:
        """The raw body of ``GET path`` (a ``/p2p/...`` path) from the connected peer
        ``node_id``, within our session there (``PeerRefused``/``PeerUnavailable`` if not)."""
        assert self.client is not None
        peer = self._link(node_id)
        return await self.client.fetch(f"{peer.url}{path}", params=params, session=peer.token)

    def failed(self, peer: Peer, why: str) -> None:
        """A call to a connected peer failed: disconnect it and back off."""
        if peer.connected:
            log.info("p2p: lost %s: %s", peer.url, why)
        if peer.node_id is not None:
            self.do(self.protocol.request_failed(peer.node_id, why, self.node.clock()))

    def discourage(self, peer: Peer, reason: str) -> None:
        """``peer`` sent data that proves it broke the protocol."""
        if peer.node_id is not None:
            self.do(self.protocol.misbehaved(peer.node_id, reason, self.node.clock()))

    # --- the operator --------------------------------------------------------------------

    async def connect_now(self, url: str) -> bool:
        """``POST /v1/admin/peers``: dial now, lifting a discouragement of that address."""
        actions = self.protocol.connect(url, self.node.clock())
        dial = next((a for a in actions if isinstance(a, Dial)), None)
        self.do([a for a in actions if a is not dial])
        return dial is not None and await self._handshake(dial)

    async def disconnect(self, url: str) -> bool:
        if self.table.get(url.rstrip("/")) is None:
            return False
        self.do(self.protocol.disconnect(url, self.node.clock()))
        return True

    async def set_active(self, active: bool) -> None:
        """Like Bitcoin's setnetworkactive: off drops every connection; on reconnects."""
        self.node.network_active = active
        self.do(self.protocol.set_active(active, self.node.clock()))

    async def _maintain(self) -> None:
        """The core's timer: dial free slots, refresh tips."""
        while True:
            try:
                if self.active:
                    self.do(self.protocol.tick(self.node.clock()))
            except Exception:
                log.exception("p2p maintenance failed")
            await asyncio.sleep(MAINTAIN_EVERY_S)

    # --- the chain's events --------------------------------------------------------------

    async def relay_block(self, reorg: Reorg) -> None:
        blocks: dict[str, Block] = {b.hash: b for b in reorg.connected}
        self.do(self.protocol.block_connected(list(blocks), self.node.clock()), blocks)

    async def relay_txs(self, txs: list[Transaction], source: str | None) -> None:
        items: dict[str, Transaction] = {tx.txid: tx for tx in txs}
        self.do(self.protocol.txs_accepted(list(items), source, self.node.clock()), items)

    # --- inbound (called by the /p2p routes) -----------------------------------------------

    def _check_active(self) -> None:
        if not self.active or self.core is None:
            raise NetworkInactive("p2p networking is switched off on this node")

    def on_hello(self, body: Any) -> dict[str, Any]:
        self._check_active()
        hello = Hello.from_json(body)
        return self.protocol.hello_received(hello, self.node.clock()).to_json()

    def on_finish(self, body: Any) -> dict[str, Any]:
        self._check_active()
        finish = HelloFinish.from_json(body)
        token, actions = self.protocol.finish_received(finish, self.node.clock())
        self.do(actions)
        return {"session": token}

    def sender(self, headers: Mapping[str, str]) -> str:
        """The node_id behind an inbound request's session (``Refused`` if none)."""
        self._check_active()
        return self.protocol.authenticate(
            headers.get(SESSION_HEADER.lower()), headers.get("x-ailedger-node"), self.node.clock()
        )

    async def on_block(self, node_id: str, block: Block) -> dict[str, Any]:
        peer = self.protocol.peer(node_id)
        if peer is not None:  # before the chain relays it: never back to its sender
            peer.known_blocks.add(block.hash)
        result = await self.node.submit_block(block)
        outcome = result.outcome.value
        self.do(
            self.protocol.block_received(
                node_id, block.hash, outcome, result.code, self.node.clock()
            )
        )
        out: dict[str, Any] = {"status": outcome}
        if result.code:
            out.update(code=result.code, message=result.message)
        return out

    async def on_transactions(self, node_id: str, objs: list[Any]) -> dict[str, Any]:
        results = await self.node.submit_transactions(objs, source=node_id)
        judged = [(r.txid, r.status, r.error.code if r.error else None) for r in results]
        self.do(self.protocol.txs_received(node_id, judged, self.node.clock()))
        out = []
        for result in results:
            item: dict[str, Any] = {"txid": result.txid, "status": result.status}
            if result.error is not None:
                item["code"] = result.error.code
            out.append(item)
        return {"results": out}

    def punish(self, node_id: str, reason: str) -> None:
        self.do(self.protocol.misbehaved(node_id, reason, self.node.clock()))

    async def on_headers(self, locator: list[str], limit: int) -> list[str]:
        chain = self.node.chain

        def after() -> list[str]:
            entries = chain.tree.headers_after_locator(chain.tip, locator, limit)
            return [e.hash for e in entries]

        hashes = await self.node.run(after)
        with self.node.reader() as reader:
            return [raw.hex() for raw in reader.header_raws(hashes)]

    def oversize(self, scope: MutableMapping[str, Any]) -> None:
        """An oversized body on a /p2p path within a session is misbehaviour of that
        session's node (the API's clients, and requests without a session, blame nobody)."""
        if not str(scope.get("path", "")).startswith("/p2p/") or self.core is None:
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", ())}
        try:
            node_id = self.sender(headers)
        except (Refused, NodeError):
            return
        self.punish(node_id, "oversized message")
