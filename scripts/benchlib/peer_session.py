"""Open a peer session at a node from a benchmark, as a real peer would (design.md §5):
both steps of the hello, signed with a node key of the benchmark's own."""

from __future__ import annotations

import secrets

import httpx

from node.p2p.identity import NodeKey, hello_transcript
from node.p2p.messages import Best, Hello, HelloAnswer, HelloFinish

__all__ = ["UNREACHABLE", "open_session"]

UNREACHABLE = "http://127.0.0.1:9"
"""The listen URL a benchmark peer claims: the node's dial-back finds nobody there."""


def open_session(client: httpx.Client, key: NodeKey | None = None) -> dict[str, str]:
    """Say hello to the node behind ``client``: the headers naming the session it opens."""
    key = key or NodeKey.from_seed(secrets.token_bytes(32))
    status = client.get("/v1/status").raise_for_status().json()
    best = Best(status["best_hash"], status["height"], int(status["chain_work"], 16))
    hello = Hello(
        status["network"],
        status["genesis_hash"],
        key.node_id,
        "bench",
        UNREACHABLE,
        best,
        secrets.token_hex(32),
    )
    answer = HelloAnswer.from_json(
        client.post("/p2p/hello", json=hello.to_json()).raise_for_status().json()
    )
    transcript = hello_transcript(
        role="dial",
        genesis_hash=status["genesis_hash"],
        dialer=key.node_id,
        answerer=answer.hello.node_id,
        dialer_challenge=hello.challenge,
        answerer_challenge=answer.hello.challenge,
    )
    finish = HelloFinish(key.node_id, answer.hello.challenge, key.sign_hello(transcript))
    reply = client.post("/p2p/hello/finish", json=finish.to_json()).raise_for_status().json()
    return {"X-Ailedger-Node": key.node_id, "X-Ailedger-Session": reply["session"]}
