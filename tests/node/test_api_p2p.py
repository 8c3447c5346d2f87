"""In-process tests of what a node serves to peers that sync from it: block runs
(``GET /p2p/blocks?hash=..``), single blocks and header runs, within a session; what it
answers without one; and blocks submitted from outside the peers (``POST /v1/blocks``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from consensus.block import Block, Header
from consensus.genesis import genesis_header
from consensus.keys import private_key_from_pem
from consensus.params import REGTEST
from node.api.routes import p2p as p2p_routes
from node.api.routes import submitblock
from node.p2p.identity import KEY_FILE, NodeKey
from node.p2p.policy import MAX_FETCH_BLOCKS
from tests.consensus.conftest import ALICE, BOB, dataset_payload, make_tx
from tests.node.conftest import Api, open_api, open_session, regtest_settings
from tests.node.test_api import error_of
from tests.node.test_chainstate import mine_run

UNKNOWN = "ab" * 32


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    """A node, and a session at it (what a peer that syncs from it holds)."""
    async with open_api(regtest_settings(tmp_path)) as opened:
        opened.client.headers.update(
            await open_session(opened.client, NodeKey.from_seed(b"p" * 32))
        )
        yield opened


async def mined_chain(api: Api, blocks: int) -> list[str]:
    """``blocks`` blocks on genesis, each with one record; their hashes, lowest first."""
    hashes = []
    for n in range(blocks):
        await api.accept(make_tx(ALICE if n % 2 else BOB, "dataset", dataset_payload(f"d{n}")))
        hashes.extend(await api.mine())
    return hashes


async def run_of(api: Api, hashes: list[str]) -> list[Block]:
    response = await api.client.get("/p2p/blocks", params=[("hash", h) for h in hashes])
    assert response.status_code == 200, response.text
    return [Block.from_json(obj) for obj in response.json()["blocks"]]


async def test_a_run_is_served_in_the_order_asked(api: Api) -> None:
    hashes = await mined_chain(api, 5)
    served = await run_of(api, [hashes[3], hashes[0], hashes[4]])
    assert [b.hash for b in served] == [hashes[3], hashes[0], hashes[4]]
    single = (await api.client.get(f"/p2p/blocks/{hashes[3]}")).json()
    assert served[0] == Block.from_json(single)
    assert len(served[0].transactions) == 1


async def test_a_run_answer_is_json(api: Api) -> None:
    hashes = await mined_chain(api, 1)
    response = await api.client.get("/p2p/blocks", params={"hash": hashes[0]})
    assert response.headers["content-type"] == "application/json"
    assert [obj["hash"] for obj in response.json()["blocks"]] == hashes


async def test_a_run_stops_at_the_first_block_not_held(api: Api) -> None:
    hashes = await mined_chain(api, 3)
    assert [b.hash for b in await run_of(api, [hashes[0], UNKNOWN, hashes[1]])] == [hashes[0]]
    assert await run_of(api, [UNKNOWN, hashes[0]]) == []


async def test_a_run_stops_after_the_block_that_reaches_the_byte_limit(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    hashes = await mined_chain(api, 4)
    monkeypatch.setattr(p2p_routes, "MAX_FETCH_BYTES", 1)
    assert [b.hash for b in await run_of(api, hashes)] == hashes[:1]


@pytest.mark.parametrize("count", [0, MAX_FETCH_BLOCKS + 1])
async def test_a_run_of_no_blocks_or_too_many_is_refused(api: Api, count: int) -> None:
    response = await api.client.get("/p2p/blocks", params=[("hash", UNKNOWN)] * count)
    assert error_of(response) == (422, "bad-request")


async def test_the_longest_run_is_served(api: Api) -> None:
    hashes = await mined_chain(api, 2)
    asked = (hashes * MAX_FETCH_BLOCKS)[:MAX_FETCH_BLOCKS]
    assert [b.hash for b in await run_of(api, asked)] == asked


async def test_headers_follow_the_locator_fork_point(api: Api) -> None:
    hashes = await mined_chain(api, 4)
    genesis = (await api.get("/v1/blocks/0"))["hash"]

    async def headers(locator: list[str], limit: int = 2000) -> list[str]:
        response = await api.client.post("/p2p/headers", json={"locator": locator, "limit": limit})
        assert response.status_code == 200, response.text
        return [Header.from_hex(h).hash for h in response.json()["headers"]]

    assert await headers([hashes[1], genesis]) == hashes[2:]
    assert await headers([UNKNOWN, hashes[0], genesis]) == hashes[1:]
    assert await headers([genesis], limit=2) == hashes[:2]
    assert await headers([hashes[-1]]) == []


async def test_an_unknown_single_block_is_404(api: Api) -> None:
    response = await api.client.get(f"/p2p/blocks/{UNKNOWN}")
    assert error_of(response) == (404, "not-found")


# --- sessions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/p2p/peers"),
        ("GET", f"/p2p/blocks/{UNKNOWN}"),
        ("GET", f"/p2p/blocks?hash={UNKNOWN}"),
        ("POST", "/p2p/headers"),
        ("POST", "/p2p/blocks"),
        ("POST", "/p2p/transactions"),
    ],
)
async def test_a_request_without_a_valid_session_is_401_and_blames_nobody(
    tmp_path: Path, method: str, path: str
) -> None:
    async with open_api(regtest_settings(tmp_path)) as api:
        honest = await open_session(api.client, NodeKey.from_seed(b"h" * 32))
        stolen = {**honest, "X-Ailedger-Node": NodeKey.from_seed(b"x" * 32).node_id}
        for headers in ({}, {"X-Ailedger-Session": "ab" * 24}, stolen):
            response = await api.client.request(method, path, json={}, headers=headers)
            assert error_of(response) == (401, "no-session")
        assert api.p2p.protocol.discouraged(honest["X-Ailedger-Node"], api.node.clock()) is None
        response = await api.client.get("/p2p/peers", headers=honest)
        assert response.status_code == 200, response.text


# --- POST /v1/blocks ----------------------------------------------------------------------


async def test_a_block_from_outside_the_peers_gets_the_outcomes_of_a_push(api: Api) -> None:
    blocks = mine_run(genesis_header(REGTEST), [[], [], []])
    public = {"X-Ailedger-Session": ""}

    async def submit(block: Block) -> httpx.Response:
        return await api.client.post("/v1/blocks", json=block.to_json(), headers=public)

    assert (await submit(blocks[0])).json() == {"hash": blocks[0].hash, "status": "accepted"}
    assert (await submit(blocks[0])).json()["status"] == "duplicate"
    assert (await submit(blocks[2])).json()["status"] == "need-parents"
    assert (await api.get("/v1/status"))["best_hash"] == blocks[0].hash
    bad = Block(blocks[1].header, (make_tx(ALICE, "dataset", dataset_payload("not-in-root")),))
    assert error_of(await submit(bad)) == (400, "bad-merkle-root")
    assert error_of(await api.client.post("/v1/blocks", json={"header": 1})) == (
        422,
        "bad-block",
    )


async def test_submitted_blocks_are_rate_limited(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(submitblock, "BURST", 2)
    monkeypatch.setattr(submitblock, "RATE_PER_S", 0.001)  # no refill within the test
    block = mine_run(genesis_header(REGTEST), [[]])[0]
    answers = [
        (await api.client.post("/v1/blocks", json=block.to_json())).status_code for _ in range(4)
    ]
    assert answers[:2] == [200, 200]
    assert answers[2:] == [429, 429]


# --- the node key ----------------------------------------------------------------------


async def test_the_node_key_is_made_once_private_and_is_the_node_id(tmp_path: Path) -> None:
    """A data directory without a key (a new one, or one from before node keys, whose
    stored node id was random) gets one, mode 0600; the node id is its public key, the
    same after a restart."""
    async with open_api(regtest_settings(tmp_path)) as api:
        api.node.store.set_meta("node_id", "0123456789abcdef")  # what older versions kept
        first = (await api.get("/v1/status"))["node_id"]
    path = tmp_path / KEY_FILE
    assert path.stat().st_mode & 0o777 == 0o600
    key = NodeKey(private_key_from_pem(path.read_bytes()))
    assert first == key.node_id and len(first) == 64
    async with open_api(regtest_settings(tmp_path)) as api:
        assert (await api.get("/v1/status"))["node_id"] == first


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        "hello",
        {},
        {"node_id": "zz"},
        {"network": "regtest", "best": 1},
        {"header": {}, "transactions": "x"},
        {"challenge": "00" * 32, "node_id": "00" * 32, "signature": "00" * 64},
        {"transactions": [1, "x", {}]},
        {"locator": "x", "limit": 0},
    ],
)
@pytest.mark.parametrize(
    "path",
    [
        "/p2p/hello",
        "/p2p/hello/finish",
        "/v1/blocks",
        "/p2p/blocks",
        "/p2p/transactions",
        "/p2p/headers",
    ],
)
async def test_bad_messages_get_a_clear_error_never_a_500(
    api: Api, path: str, body: object
) -> None:
    response = await api.client.post(path, json=body)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert set(response.json()["error"]) >= {"code", "message"}
