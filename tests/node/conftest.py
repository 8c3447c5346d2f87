"""In-process node fixtures: a real app (lifespan, SQLite on disk) behind httpx's ASGITransport."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from consensus.block import ZERO_HASH, Header
from consensus.genesis import genesis_header
from consensus.params import REGTEST
from consensus.pow import bits_to_target
from consensus.tx import Transaction
from node.api import create_app
from node.config import Settings
from node.daemon import Node
from node.miner import mine_once
from node.p2p.identity import NodeKey, hello_transcript
from node.p2p.messages import Best, Hello, HelloAnswer, HelloFinish
from node.p2p.service import P2P
from tests.consensus.conftest import (
    ALICE,
    BOB,
    attestation_payload,
    dataset_payload,
    digest,
    inference_payload,
    make_tx,
    model_payload,
    revocation_payload,
)

ADMIN_TOKEN = "test-admin-token"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def solved_header(parent: Header, root: str = ZERO_HASH, *, nonce_ok: bool = True) -> Header:
    """A regtest header on ``parent`` whose proof of work passes (or, ``nonce_ok=False``,
    fails), with Merkle root ``root``."""
    header = Header(
        version=1,
        height=parent.height + 1,
        prev_hash=parent.hash,
        merkle_root=root,
        timestamp=parent.timestamp + 1_000,
        bits=REGTEST.pow_limit_bits,
        miner=ZERO_HASH,
        nonce=0,
    )
    target = bits_to_target(header.bits)
    if nonce_ok:
        return mine_once(header, target)
    return next(h for n in range(1 << 16) if int((h := header.with_nonce(n)).hash, 16) > target)


@dataclass
class Api:
    client: httpx.AsyncClient
    node: Node
    p2p: P2P

    async def submit(self, tx: Transaction) -> httpx.Response:
        return await self.client.post("/v1/transactions", json=tx.to_json())

    async def accept(self, *txs: Transaction) -> None:
        for tx in txs:
            response = await self.submit(tx)
            assert response.status_code == 202, response.text

    async def mine(self, blocks: int = 1) -> list[str]:
        response = await self.client.post("/v1/admin/mine", json={"blocks": blocks}, headers=ADMIN)
        assert response.status_code == 200, response.text
        hashes: list[str] = response.json()["hashes"]
        return hashes

    async def get(self, path: str, **params: Any) -> Any:
        response = await self.client.get(path, params=params)
        assert response.status_code == 200, response.text
        return response.json()


def regtest_settings(data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "network": "regtest",
        "data_dir": data_dir,
        "admin_token": ADMIN_TOKEN,
        **overrides,
    }
    return Settings(**values)


@asynccontextmanager
async def open_api(settings: Settings) -> AsyncIterator[Api]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://node.test") as client:
            yield Api(client, app.state.node, app.state.p2p)


async def open_session(
    client: httpx.AsyncClient, key: NodeKey, listen_url: str = "http://127.0.0.1:9"
) -> dict[str, str]:
    """Say hello to the node behind ``client`` as ``key``'s node (both steps of the
    handshake): the headers that name the session it opens."""
    genesis = genesis_header(REGTEST)
    hello = Hello(
        "regtest",
        genesis.hash,
        key.node_id,
        "test",
        listen_url,
        Best(genesis.hash, 0, 1),
        "cc" * 32,
    )
    first = await client.post("/p2p/hello", json=hello.to_json())
    assert first.status_code == 200, first.text
    answer = HelloAnswer.from_json(first.json())
    transcript = hello_transcript(
        role="dial",
        genesis_hash=genesis.hash,
        dialer=key.node_id,
        answerer=answer.hello.node_id,
        dialer_challenge=hello.challenge,
        answerer_challenge=answer.hello.challenge,
    )
    finish = HelloFinish(key.node_id, answer.hello.challenge, key.sign_hello(transcript))
    second = await client.post("/p2p/hello/finish", json=finish.to_json())
    assert second.status_code == 200, second.text
    return {"X-Ailedger-Node": key.node_id, "X-Ailedger-Session": second.json()["session"]}


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with open_api(regtest_settings(tmp_path)) as opened:
        yield opened


@pytest.fixture
def lineage() -> dict[str, Transaction]:
    """A small provenance graph, in a valid chain order."""
    raw = make_tx(ALICE, "dataset", dataset_payload("raw"))
    clean = make_tx(ALICE, "dataset", dataset_payload("clean", derived_from=[raw.txid]))
    held_out = make_tx(BOB, "dataset", dataset_payload("held-out"))
    model = make_tx(
        ALICE,
        "model",
        model_payload(
            "net",
            inputs=[(clean.txid, "training_data"), (held_out.txid, "validation_data")],
            code_digest=digest("code"),
        ),
    )
    inference = make_tx(BOB, "inference", inference_payload(model.txid, "cat"))
    audit = make_tx(BOB, "attestation", attestation_payload(model.txid))
    revoke = make_tx(ALICE, "revocation", revocation_payload(raw.txid, reason="leaked"))
    return {
        "raw": raw,
        "clean": clean,
        "held_out": held_out,
        "model": model,
        "inference": inference,
        "audit": audit,
        "revoke": revoke,
    }
