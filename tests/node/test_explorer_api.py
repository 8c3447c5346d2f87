"""The explorer's side of the API, in process: GET /v1/search, the page and its files."""

from __future__ import annotations

from consensus.tx import Transaction
from tests.consensus.conftest import ALICE_HEX, BOB_HEX
from tests.node.conftest import Api


async def search(api: Api, q: str) -> list[dict[str, object]]:
    body = await api.get("/v1/search", q=q)
    assert body["query"] == q
    matches: list[dict[str, object]] = body["matches"]
    return matches


async def test_search_names_records_blocks_heights_signers_and_digests(
    api: Api, lineage: dict[str, Transaction]
) -> None:
    raw, clean = lineage["raw"], lineage["clean"]
    await api.accept(raw)
    (block_hash,) = await api.mine(1)
    await api.accept(clean)

    (record,) = await search(api, raw.txid)
    assert record == {
        "type": "record", "id": raw.txid, "kind": "dataset", "status": "confirmed",
        "height": None, "active": None,
    }  # fmt: skip
    (pending,) = await search(api, f"  {clean.txid.upper()} ")
    assert (pending["type"], pending["status"]) == ("record", "pending")
    (block,) = await search(api, block_hash)
    assert (block["type"], block["height"], block["active"]) == ("block", 1, True)
    (by_height,) = await search(api, "1")
    assert (by_height["type"], by_height["id"]) == ("block", block_hash)
    (signer,) = await search(api, ALICE_HEX)
    assert signer["type"] == "signer"
    (found,) = await search(api, raw.payload["digest"])
    assert found == {
        "type": "digest", "id": raw.payload["digest"], "kind": None, "status": None,
        "height": None, "active": None,
    }  # fmt: skip

    for nothing in (
        "7",
        "9" * 19,
        "99999999999999999999",
        BOB_HEX,
        "sha256:" + "0" * 64,
        "example",
        "ü" * 200,
    ):
        assert await search(api, nothing) == []


async def test_search_refuses_an_empty_or_overlong_query(api: Api) -> None:
    for params in ({}, {"q": ""}, {"q": "x" * 201}):
        response = await api.client.get("/v1/search", params=params)
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "bad-request"


async def test_search_is_documented_and_the_page_is_not(api: Api) -> None:
    spec = await api.get("/openapi.json")
    assert {"200", "422", "503"} <= set(spec["paths"]["/v1/search"]["get"]["responses"])
    assert not {"/", "/docs", "/redoc", "/static/{name}"} & set(spec["paths"])


async def test_page_files_and_docs_are_served_from_the_package(api: Api) -> None:
    page = await api.client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert 'type="search"' in page.text
    for path, kind in (
        ("/static/app.js", "text/javascript; charset=utf-8"),
        ("/static/app.css", "text/css; charset=utf-8"),
        ("/vendor/swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
        ("/vendor/redoc.standalone.js", "text/javascript; charset=utf-8"),
    ):
        response = await api.client.get(path)
        assert (response.status_code, response.headers["content-type"]) == (200, kind), path
    for path in ("/docs", "/redoc"):
        response = await api.client.get(path)
        assert response.status_code == 200
        assert "cdn" not in response.text and "https://" not in response.text


async def test_unknown_files_are_a_json_404(api: Api) -> None:
    for path in ("/static/nope.js", "/static/..%2Fassets.py", "/vendor/VENDORED", "/static/"):
        response = await api.client.get(path)
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "not-found"


async def test_an_unchanged_file_costs_a_304(api: Api) -> None:
    first = await api.client.get("/static/app.js")
    again = await api.client.get("/static/app.js", headers={"If-None-Match": first.headers["etag"]})
    assert (again.status_code, again.content) == (304, b"")
