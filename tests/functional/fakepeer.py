"""A scripted fake peer for functional tests, like Bitcoin Core's ``P2PInterface``.

``FakePeer`` runs a real, tiny HTTP server on 127.0.0.1 (``http.server`` in a thread) that
speaks the peer protocol of design.md §5 from a chain it holds: ``POST /p2p/hello``,
``POST /p2p/headers``, ``GET /p2p/blocks?hash=..`` and ``GET /p2p/blocks/{hash}``,
``GET /p2p/peers``, and it accepts (and
records) the blocks and transactions a node pushes to it. It has a node key of its own
and authenticates like a real peer (design.md §5): ``send_hello`` runs both steps of the
handshake and keeps the session token the node issues, which every later request sends
in ``X-Ailedger-Session``; it answers a node's hello (the node dials its listen URL back)
with a proper signature. It can also act: push blocks, transactions or raw bodies, and
lie about who it is (``claim_node_id``) or reuse a token (``sessions``).

Everything it serves or sends is scriptable, so a test can make it lie: announce a
wrong network or genesis, answer ``/p2p/headers`` with a run that does not connect, or
push a block that breaks one rule. The module-level helpers build valid regtest blocks on
a given parent (regtest needs about two hashes) and corrupt them one rule at a time.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from consensus.block import ZERO_HASH, Block, Header
from consensus.genesis import genesis_block
from consensus.merkle import merkle_root
from consensus.params import REGTEST, ConsensusParams
from consensus.pow import bits_to_target, block_work, next_bits, solve, target_to_bits
from consensus.tx import Transaction
from node.p2p.identity import NodeKey, hello_transcript
from node.p2p.messages import Best, Hello, HelloAnswer, HelloFinish
from tests.functional.framework import TestNode

__all__ = [
    "MAX_BODY_BYTES",
    "FakePeer",
    "Request",
    "build_block",
    "forged_signature",
    "harder_bits",
    "headers_hex",
    "now_ms",
    "oversized_body",
    "too_new_timestamp",
    "with_bad_merkle_root",
    "with_bad_pow",
    "with_bits",
]

MAX_BODY_BYTES = 4 << 20
"""The node's default ``max_body_bytes``: anything larger is an oversized message."""
PROTOCOL_VERSION = 1
_NONCE_CHUNK = 1 << 16


def now_ms() -> int:
    return time.time_ns() // 1_000_000


# --- building and corrupting blocks ----------------------------------------------------


def _solved(header: Header, *, meets: bool = True) -> Header:
    """``header`` with the lowest nonce whose hash meets (or, ``meets=False``, fails) its
    own bits' target."""
    target = bits_to_target(header.bits)
    prefix = header.prefix()
    if meets:
        start = 0
        while True:
            nonce = solve(prefix, target, start, _NONCE_CHUNK)
            if nonce is not None:
                return header.with_nonce(nonce)
            start += _NONCE_CHUNK
    for nonce in range(1 << 20):  # on regtest about every other nonce fails
        candidate = header.with_nonce(nonce)
        if int(candidate.hash, 16) > target:
            return candidate
    raise AssertionError("no failing nonce found: is the target the whole hash space?")


def build_block(
    parent: Header,
    txs: Sequence[Transaction] = (),
    *,
    params: ConsensusParams = REGTEST,
    timestamp: int | None = None,
    bits: int | None = None,
    root: str | None = None,
    miner: str = ZERO_HASH,
) -> Block:
    """A block on ``parent`` with a solved proof of work.

    By default every field is what the rules want: the next height, the retarget rule's
    bits, the Merkle root of ``txs`` and the later of now and ``parent.timestamp + 1``
    (which is past the median time of a chain whose times never decrease). Override a
    field to make the block invalid in exactly that way; the PoW is solved for the header
    as given.
    """
    header = Header(
        version=1,
        height=parent.height + 1,
        prev_hash=parent.hash,
        merkle_root=root if root is not None else merkle_root([t.leaf_bytes for t in txs]).hex(),
        timestamp=timestamp if timestamp is not None else max(now_ms(), parent.timestamp + 1),
        bits=bits if bits is not None else next_bits(parent.height, parent.timestamp, params),
        miner=miner,
        nonce=0,
    )
    return Block(_solved(header), tuple(txs))


def with_bad_pow(block: Block) -> Block:
    """The same block with a nonce whose hash is above the target ("high-hash")."""
    return Block(_solved(block.header, meets=False), block.transactions)


def with_bad_merkle_root(block: Block) -> Block:
    """The same transactions under a header that commits to other ones, PoW re-solved
    ("bad-merkle-root")."""
    wrong = merkle_root([b"not these transactions"]).hex()
    return Block(_solved(replace(block.header, merkle_root=wrong)), block.transactions)


def with_bits(block: Block, bits: int) -> Block:
    """The same block with other ``bits`` and a PoW that meets them ("bad-diffbits" when
    they are not the retarget rule's)."""
    return Block(_solved(replace(block.header, bits=bits)), block.transactions)


def harder_bits(bits: int) -> int:
    """Bits for half the target: valid PoW-wise, wrong for a chain that expects ``bits``."""
    return target_to_bits(bits_to_target(bits) // 2)


def forged_signature(tx: Transaction) -> Transaction:
    """``tx`` with a well-formed but wrong signature: same body, so the same txid."""
    first = "0" if tx.signature[0] != "0" else "1"
    return Transaction.from_json({**tx.to_json(), "signature": first + tx.signature[1:]})


def too_new_timestamp(params: ConsensusParams = REGTEST, margin_ms: int = 8_000) -> int:
    """A block time ``margin_ms`` past what a node accepts now ("time-too-new"): such a
    block is held back until the node's clock catches up, never punished."""
    return now_ms() + params.max_future_ms + margin_ms


def headers_hex(blocks: Iterable[Block]) -> list[str]:
    """The 128-byte headers of ``blocks`` as hex, as ``/p2p/headers`` answers them."""
    return [b.header.raw.hex() for b in blocks]


def oversized_body(max_bytes: int = MAX_BODY_BYTES) -> bytes:
    """A JSON body a little over ``max_bytes``."""
    return json.dumps({"padding": "x" * (max_bytes + 1024)}).encode()


def _chain_work(blocks: Sequence[Block]) -> int:
    return sum(block_work(bits_to_target(b.header.bits)) for b in blocks)


# --- the peer --------------------------------------------------------------------------


class Request:
    """One request the fake peer received: method, path, the sender's node id, body."""

    def __init__(self, method: str, path: str, sender: str | None, body: Any) -> None:
        self.method = method
        self.path = path
        self.sender = sender
        self.body = body

    def __repr__(self) -> str:
        return f"Request({self.method} {self.path} from {self.sender})"


class FakePeer:
    """A scripted peer on its own port. Use as a context manager, or call ``close()``.

    State a test may set at any time:

    - ``chain``: the blocks it holds (genesis first); ``/p2p/headers`` and
      ``/p2p/blocks`` answer from it (and from ``extra_blocks``).
    - ``announce``: the block its hello names as best (default: the tip of ``chain``).
    - ``network`` / ``genesis_hash``: what its hello claims (set them to lie).
    - ``headers_answer``: a fixed list of header hexes for every ``/p2p/headers``.
    - ``peers_answer``: what ``/p2p/peers`` returns.

    ``requests`` records every request it received, in order.
    """

    def __init__(self, params: ConsensusParams = REGTEST, *, key: NodeKey | None = None) -> None:
        self.params = params
        self.key = key or NodeKey.from_seed(secrets.token_bytes(32))
        self.node_id = self.key.node_id
        self.claim_node_id: str | None = None
        """A node_id to claim in place of its own (whose key it does not hold)."""
        self.listen_url: str | None = None
        """A listen URL to claim in place of its own."""
        self.sessions: dict[str, str] = {}
        """The session token each node (by URL) issued to it."""
        self.last_hello: tuple[dict[str, Any], dict[str, Any]] | None = None
        """The hello and finish it last sent, as sent (to replay them)."""
        self._pending: dict[str, Hello] = {}
        genesis = genesis_block(params)
        self.network = params.network
        self.genesis_hash = genesis.hash
        self.chain: list[Block] = [genesis]
        self.extra_blocks: dict[str, Block] = {}
        self.announce: Block | None = None
        self.headers_answer: list[str] | None = None
        self.peers_answer: list[str] = []
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.http = httpx.Client(timeout=30.0)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"fakepeer {self.url}", daemon=True
        )
        self._thread.start()

    def __repr__(self) -> str:
        return f"[fake peer {self.url}]"

    def __enter__(self) -> FakePeer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self.http.close()

    # --- the chain it holds ------------------------------------------------------------

    @property
    def tip(self) -> Block:
        return self.chain[-1]

    def block(self, block_hash: str) -> Block | None:
        with self._lock:
            for block in self.chain:
                if block.hash == block_hash:
                    return block
            return self.extra_blocks.get(block_hash)

    def blocks_run(self, hashes: Iterable[str]) -> list[dict[str, Any]]:
        """What ``GET /p2p/blocks?hash=..`` answers: the blocks held, in the order asked,
        up to the first one missing."""
        run = []
        for block_hash in hashes:
            block = self.block(block_hash)
            if block is None:
                break
            run.append(block.to_json())
        return run

    def fetched(self) -> list[str]:
        """Hashes of the blocks nodes fetched from us (one by one or in runs), in order."""
        hashes: list[str] = []
        for request in self.received("GET", "/p2p/blocks"):
            url = urlsplit(request.path)
            if url.path == "/p2p/blocks":
                hashes.extend(parse_qs(url.query).get("hash", []))
            else:
                hashes.append(url.path.removeprefix("/p2p/blocks/"))
        return hashes

    def copy_chain(self, node: TestNode) -> None:
        """Hold exactly ``node``'s active chain (fetched through its client API)."""
        hashes: list[str] = []
        while True:
            batch = node.call(
                "GET", "/v1/headers", params={"from_height": len(hashes) + 1, "count": 2000}
            )["headers"]
            hashes.extend(Header.from_hex(h).hash for h in batch)
            if len(batch) < 2000:
                break
        blocks = [Block.from_json(node.call("GET", f"/v1/blocks/{h}")) for h in hashes]
        with self._lock:
            self.chain = [self.chain[0], *blocks]

    def next_block(self, txs: Sequence[Transaction] = (), **overrides: Any) -> Block:
        """A solved block on the tip (not added); ``overrides`` go to ``build_block``."""
        return build_block(self.tip.header, txs, params=self.params, **overrides)

    def extend(self, count: int = 1, txs: Sequence[Transaction] = ()) -> list[Block]:
        """Mine ``count`` valid blocks on the tip and hold them (``txs`` go in the first)."""
        new = []
        for i in range(count):
            block = self.next_block(txs if i == 0 else ())
            self.add(block)
            new.append(block)
        return new

    def add(self, block: Block) -> None:
        """Hold ``block`` as the new tip, whatever it is (to serve a bad one)."""
        with self._lock:
            self.chain.append(block)

    def best(self) -> Best:
        with self._lock:
            best = self.announce or self.tip
            upto = next((i for i, b in enumerate(self.chain) if b.hash == best.hash), None)
            work = _chain_work(self.chain[: upto + 1]) if upto is not None else 0
        return Best(best.hash, best.height, work)

    def hello(self, challenge: str | None = None) -> Hello:
        """Its hello (with a fresh challenge unless given), claiming what it is told to."""
        return Hello(
            network=self.network,
            genesis_hash=self.genesis_hash,
            node_id=self.claim_node_id or self.node_id,
            version="fakepeer",
            listen_url=self.listen_url or self.url,
            best=self.best(),
            challenge=challenge or secrets.token_hex(32),
            protocol=PROTOCOL_VERSION,
        )

    def hello_message(self) -> dict[str, Any]:
        return self.hello().to_json()

    def answer_hello(self, obj: Any) -> dict[str, Any]:
        """Its answer to a node's hello: its own hello, signed over both challenges."""
        theirs = Hello.from_json(obj)
        ours = self.hello()
        self._pending[ours.challenge] = theirs
        transcript = hello_transcript(
            role="answer",
            genesis_hash=self.genesis_hash,
            dialer=theirs.node_id,
            answerer=ours.node_id,
            dialer_challenge=theirs.challenge,
            answerer_challenge=ours.challenge,
        )
        return HelloAnswer(ours, self.key.sign_hello(transcript)).to_json()

    def headers_after(self, locator: Sequence[str], limit: int) -> list[str]:
        """Our headers after the first locator hash on our chain (after genesis if none)."""
        if self.headers_answer is not None:
            return list(self.headers_answer)
        with self._lock:
            index = {b.hash: i for i, b in enumerate(self.chain)}
            fork = next((index[h] for h in locator if h in index), 0)
            return headers_hex(self.chain[fork + 1 : fork + 1 + limit])

    # --- what it received ----------------------------------------------------------------

    def received(self, method: str, prefix: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.method == method and r.path.startswith(prefix)]

    def pushed_txids(self) -> set[str]:
        """Txids of the transactions nodes pushed to us."""
        objs = [
            obj
            for r in self.received("POST", "/p2p/transactions")
            if isinstance(r.body, dict)
            for obj in r.body.get("transactions", [])
        ]
        return {Transaction.from_json(obj).txid for obj in objs}

    def _record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)

    # --- talking to a node ---------------------------------------------------------------

    def post(
        self,
        node: TestNode | str,
        path: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        chunked: bool = False,
    ) -> httpx.Response:
        """POST ``json``, or raw ``content`` (``chunked``: without a Content-Length, in
        64 KiB pieces, so only counting what arrives can find it too large)."""
        url = node if isinstance(node, str) else node.url
        headers = self._headers(url)
        if content is None:
            return self.http.post(f"{url}{path}", json=json, headers=headers)
        body: bytes | Iterator[bytes] = content
        if chunked:
            body = (content[i : i + 65536] for i in range(0, len(content), 65536))
        return self.http.post(
            f"{url}{path}", content=body, headers={**headers, "Content-Type": "application/json"}
        )

    def get(self, node: TestNode | str, path: str) -> httpx.Response:
        url = node if isinstance(node, str) else node.url
        return self.http.get(f"{url}{path}", headers=self._headers(url))

    def _headers(self, url: str) -> dict[str, str]:
        headers = {"X-Ailedger-Node": self.claim_node_id or self.node_id}
        if url in self.sessions:
            headers["X-Ailedger-Session"] = self.sessions[url]
        return headers

    def send_hello(self, node: TestNode | str) -> httpx.Response:
        """Handshake as an inbound peer of ``node`` (both steps): the answer to the finish
        (whose ``session`` it keeps), or the refusal of the hello."""
        url = node if isinstance(node, str) else node.url
        hello = self.hello()
        first = self.http.post(f"{url}/p2p/hello", json=hello.to_json())
        if first.status_code != 200:
            return first
        answer = HelloAnswer.from_json(first.json())
        transcript = hello_transcript(
            role="dial",
            genesis_hash=self.genesis_hash,
            dialer=hello.node_id,
            answerer=answer.hello.node_id,
            dialer_challenge=hello.challenge,
            answerer_challenge=answer.hello.challenge,
        )
        finish = HelloFinish(hello.node_id, answer.hello.challenge, self.key.sign_hello(transcript))
        self.last_hello = (hello.to_json(), finish.to_json())
        response = self.http.post(f"{url}/p2p/hello/finish", json=finish.to_json())
        if response.status_code == 200:
            self.sessions[url] = response.json()["session"]
        return response

    def push_block(self, node: TestNode | str, block: Block | dict[str, Any]) -> httpx.Response:
        body = block.to_json() if isinstance(block, Block) else block
        return self.post(node, "/p2p/blocks", json=body)

    def push_transactions(
        self, node: TestNode | str, txs: Iterable[Transaction | dict[str, Any]]
    ) -> httpx.Response:
        objs = [t.to_json() if isinstance(t, Transaction) else t for t in txs]
        return self.post(node, "/p2p/transactions", json={"transactions": objs})


def _handler_for(peer: FakePeer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: the test's own output is what matters

        def _answer(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _not_found(self) -> None:
            self._answer(404, {"error": {"code": "not-found", "message": self.path}})

        def _body(self) -> Any:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                return json.loads(raw) if raw else None
            except ValueError:
                return None

        def do_GET(self) -> None:
            peer._record(Request("GET", self.path, self.headers.get("X-Ailedger-Node"), None))
            url = urlsplit(self.path)
            if url.path == "/p2p/blocks":
                self._answer(200, {"blocks": peer.blocks_run(parse_qs(url.query).get("hash", []))})
            elif self.path.startswith("/p2p/blocks/"):
                block = peer.block(self.path.removeprefix("/p2p/blocks/"))
                if block is None:
                    self._not_found()
                else:
                    self._answer(200, block.to_json())
            elif self.path == "/p2p/peers":
                self._answer(200, {"peers": list(peer.peers_answer)})
            else:
                self._not_found()

        def do_POST(self) -> None:
            body = self._body()
            peer._record(Request("POST", self.path, self.headers.get("X-Ailedger-Node"), body))
            if self.path == "/p2p/hello":
                self._answer(200, peer.answer_hello(body))
            elif self.path == "/p2p/hello/finish":
                self._answer(200, {"session": secrets.token_hex(24)})
            elif self.path == "/p2p/headers":
                locator = body.get("locator", []) if isinstance(body, dict) else []
                limit = body.get("limit", 2000) if isinstance(body, dict) else 2000
                self._answer(200, {"headers": peer.headers_after(locator, limit)})
            elif self.path == "/p2p/blocks":
                self._answer(200, {"status": "accepted"})
            elif self.path == "/p2p/transactions":
                txs = body.get("transactions", []) if isinstance(body, dict) else []
                self._answer(200, {"results": [{"txid": "", "status": "accepted"} for _ in txs]})
            else:
                self._not_found()

    return Handler
