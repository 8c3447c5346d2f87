"""In-process tests of what a node serves to peers that sync from it: block runs
(``GET /p2p/blocks?hash=..``), single blocks and header runs."""

from __future__ import annotations

import pytest

from consensus.block import Block, Header
from node.api.routes import p2p as p2p_routes
from node.p2p.policy import MAX_FETCH_BLOCKS
from tests.consensus.conftest import ALICE, BOB, dataset_payload, make_tx
from tests.node.conftest import Api
from tests.node.test_api import error_of

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
