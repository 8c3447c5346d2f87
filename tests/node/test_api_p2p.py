"""In-process tests of what a node serves to peers that sync from it: block runs
(``GET /p2p/blocks?hash=..``), single blocks and header runs; and what it does with a
pushed block whose parent it lacks."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from consensus.block import Block, Header
from consensus.genesis import genesis_header
from consensus.params import REGTEST
from node.api.routes import p2p as p2p_routes
from node.p2p.peers import Direction, Peer
from node.p2p.policy import MAX_FETCH_BLOCKS
from tests.consensus.conftest import ALICE, BOB, dataset_payload, make_tx
from tests.node.conftest import Api, open_api, regtest_settings
from tests.node.test_api import error_of
from tests.node.test_chainstate import mine_run

UNKNOWN = "ab" * 32


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


# --- a pushed block whose parent is unknown ------------------------------------------------

STRANGER = "http://127.0.0.1:9"


@pytest.mark.parametrize(("taken", "dialed"), [(0, True), (1, True), (2, False)])
async def test_a_stranger_pushing_an_orphan_is_dialed_only_into_a_free_outbound_slot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, taken: int, dialed: bool
) -> None:
    async with open_api(regtest_settings(tmp_path, max_outbound=2)) as api:
        p2p = api.node.p2p

        async def still_there(peer: Peer) -> None:
            """The made-up peers answer nothing: keep the maintenance from dropping them."""

        monkeypatch.setattr(p2p, "_refresh", still_there)
        for n in range(taken):
            peer = p2p.table.learn(f"http://127.0.0.1:{10 + n}", source="gossip")
            assert peer is not None
            p2p.table.connected_ok(peer, 0, direction=Direction.OUTBOUND)
        dials: list[str] = []

        async def connect(peer: Peer) -> bool:
            dials.append(peer.url)
            return False

        monkeypatch.setattr(p2p, "connect", connect)
        orphan = mine_run(genesis_header(REGTEST), [[], []])[-1]
        response = await api.client.post(
            "/p2p/blocks", json=orphan.to_json(), headers={"X-Ailedger-Listen": STRANGER}
        )
        assert response.json()["status"] == "need-parents"
        await asyncio.sleep(0.05)  # a dial is a task of its own: let it start
        assert dials == ([STRANGER] if dialed else [])
        assert p2p.table.count(Direction.OUTBOUND) == taken
