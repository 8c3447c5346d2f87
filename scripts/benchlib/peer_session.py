"""Open a peer session at a node from a benchmark, as a real peer would (design.md §5):
both steps of the hello, signed with a node key of the benchmark's own."""

from __future__ import annotations

import secrets
from typing import Any

import httpx

from node.p2p.identity import NodeKey, hello_transcript
from node.p2p.messages import Best, Hello, HelloAnswer, HelloFinish

__all__ = ["UNREACHABLE", "hello_and_finish", "open_session"]

UNREACHABLE = "http://127.0.0.1:9"
"""The listen URL a benchmark peer claims: the node's dial-back finds nobody there."""


def _hello(key: NodeKey, status: dict[str, Any]) -> Hello:
    best = Best(status["best_hash"], status["height"], int(status["chain_work"], 16))
    return Hello(
        status["network"],
        status["genesis_hash"],
        key.node_id,
        "bench",
        UNREACHABLE,
        best,
        secrets.token_hex(32),
    )


def _finish(key: NodeKey, hello: Hello, answer: Any) -> HelloFinish:
    theirs = HelloAnswer.from_json(answer).hello
    transcript = hello_transcript(
        role="dial",
        genesis_hash=hello.genesis_hash,
        dialer=key.node_id,
        answerer=theirs.node_id,
        dialer_challenge=hello.challenge,
        answerer_challenge=theirs.challenge,
    )
    return HelloFinish(key.node_id, theirs.challenge, key.sign_hello(transcript))


def open_session(client: httpx.Client, key: NodeKey | None = None) -> dict[str, str]:
    """Say hello to the node behind ``client``: the headers naming the session it opens."""
    key = key or NodeKey.from_seed(secrets.token_bytes(32))
    hello = _hello(key, client.get("/v1/status").raise_for_status().json())
    answer = client.post("/p2p/hello", json=hello.to_json()).raise_for_status().json()
    finish = _finish(key, hello, answer)
    reply = client.post("/p2p/hello/finish", json=finish.to_json()).raise_for_status().json()
    return {"X-Ailedger-Node": key.node_id, "X-Ailedger-Session": reply["session"]}


async def hello_and_finish(client: httpx.AsyncClient, key: NodeKey | None = None) -> dict[str, str]:
    """``open_session`` with an async client."""
    key = key or NodeKey.from_seed(secrets.token_bytes(32))
    hello = _hello(key, (await client.get("/v1/status")).raise_for_status().json())
    answer = (await client.post("/p2p/hello", json=hello.to_json())).raise_for_status().json()
    finish = _finish(key, hello, answer)
    reply = (await client.post("/p2p/hello/finish", json=finish.to_json())).raise_for_status()
    return {"X-Ailedger-Node": key.node_id, "X-Ailedger-Session": reply.json()["session"]}
