"""Requests between simulated nodes: what each costs on the wire and on the CPU.

Every exchange of the peer protocol is an HTTP request and its answer (design §5), so
the fabric carries pairs: the request crosses the network, waits for the answering
node's CPU (one message at a time, as the node's chain worker takes one block at a
time), is served, and the answer crosses back. When either half is lost, or the two
nodes are on opposite sides of a partition, the requester hears of the failure when its
timeout expires (``node.p2p.client.TIMEOUT``), just as ``PeerUnavailable`` reaches it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from node.p2p.client import TIMEOUT
from node.sim.events import US_PER_S, EventQueue
from node.sim.network import Network

if TYPE_CHECKING:
    from consensus.block import Header
    from consensus.params import ConsensusParams
    from node.sim.blocks import SimBlock

__all__ = ["Costs", "Fabric", "Host", "Served", "Server", "Sizes"]


class Sizes:
    """Bytes on the wire (HTTP headers included) of each message, measured on a real node's
    requests: a request's HTTP headers with the X-Ailedger-* pair are about 250 bytes."""

    HTTP = 250
    HELLO = HTTP + 520
    """A hello: network, genesis, node_id, version, listen_url, best, challenge."""
    HELLO_ANSWER = HELLO + 145
    """The answerer's hello and its signature."""
    FINISH = HTTP + 300
    SESSION = HTTP + 70
    ANSWER = HTTP + 60
    """A short JSON answer: ``{"status": "accepted"}`` and the like."""
    HEADER = 259
    """One header in a headers answer: 256 hex characters, quotes and a comma."""
    LOCATOR_HASH = 67
    FETCH_HASH = 70
    """One ``hash=..`` of ``GET /p2p/blocks``."""


@dataclass(frozen=True, slots=True)
class Costs:
    """CPU time of the answering node, in microseconds."""

    block_us: int = 7_000
    """A new block: parse, checks, store, activate, relay. The default is the real nodes'
    CPU per block per node in ``scripts/bench propagation`` (line: 35 ms for 5 nodes)."""
    tx_us: int = 100
    """Per transaction of a new block: parse, signature check and ledger rules."""
    duplicate_us: int = 500
    """A block already held: the JSON is parsed, then found known."""
    parse_tx_us: int = 20
    """Per transaction of a block that is parsed only."""
    small_us: int = 300
    """A hello, a headers request, a blocks request: a short handler."""
    sign_us: int = 50
    verify_us: int = 440
    """An Ed25519 hello signature made and checked (timeit's best of 5 x 500 on this
    shared 2-core machine, 2026-12-05: 52 and 440 us)."""

    def block(self, txs: int) -> int:
        return self.block_us + txs * self.tx_us

    def duplicate(self, txs: int) -> int:
        return self.duplicate_us + txs * self.parse_tx_us


@dataclass(slots=True)
class Served:
    """The answer to a request: its body and size, the server's CPU time, and what the
    server does once that time has passed (relaying, for a new block)."""

    body: Any
    size: int
    cost_us: int
    then: Callable[[], None] | None = None


class Server(Protocol):
    index: int
    cpu_free_at: int

    def serve(self, kind: str, body: Any, src: int) -> Served: ...


class Host(Protocol):
    """What a simulated node needs of the simulation around it."""

    queue: EventQueue
    fabric: Fabric
    params: ConsensusParams
    genesis: Header
    costs: Costs
    blocks: dict[str, SimBlock]

    def held(self, node: int, block_hash: str) -> None:
        """The node stored the block's body (the reach metric's clock)."""


class Fabric:
    """Moves requests and answers between the nodes over the network model."""

    def __init__(self, queue: EventQueue, network: Network) -> None:
        self.queue = queue
        self.network = network
        self.nodes: list[Server] = []
        self.timeout_us = round((TIMEOUT.read or 10.0) * US_PER_S)
        self.connect_timeout_us = round((TIMEOUT.connect or 3.0) * US_PER_S)
        self.failed = 0
        """Requests that failed (lost, or across a partition)."""

    def request(
        self,
        src: int,
        dst: int,
        kind: str,
        body: Any,
        size: int,
        on_answer: Callable[[Any], None],
        on_fail: Callable[[Any], None],
    ) -> None:
        queue = self.queue
        now = queue.now
        if not self.network.reachable(src, dst):
            # No connection can be opened: the connect timeout, and nothing is sent.
            self.failed += 1
            queue.at(now + self.connect_timeout_us, on_fail, None)
            return
        arrival = self.network.send(now, src, dst, size)
        if arrival is None:
            self.failed += 1
            queue.at(now + self.timeout_us, on_fail, None)
            return
        queue.at(arrival, self._deliver, (src, dst, kind, body, now, on_answer, on_fail))

    def _deliver(self, item: tuple[Any, ...]) -> None:
        src, dst, kind, body, sent, on_answer, on_fail = item
        server = self.nodes[dst]
        now = self.queue.now
        served = server.serve(kind, body, src)
        done = max(now, server.cpu_free_at) + served.cost_us
        server.cpu_free_at = done
        if served.then is not None:
            self.queue.at(done, _call, served.then)
        arrival = self.network.send(done, dst, src, served.size)
        if arrival is None:
            self.failed += 1
            self.queue.at(max(sent + self.timeout_us, done), on_fail, None)
        else:
            self.queue.at(arrival, on_answer, served.body)


def _call(then: Callable[[], None]) -> None:
    then()
