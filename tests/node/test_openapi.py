"""The OpenAPI description is exact where a generated client depends on it (the full
check against a live node is scripts/openapi-check, with schemathesis)."""

from __future__ import annotations

import json
from typing import Any

from tests.consensus.conftest import ALICE, dataset_payload, make_tx
from tests.node.conftest import ADMIN, Api


def refs(value: Any) -> list[str]:
    if isinstance(value, dict):
        found = [value["$ref"]] if isinstance(value.get("$ref"), str) else []
        return found + [r for v in value.values() for r in refs(v)]
    if isinstance(value, list):
        return [r for v in value for r in refs(v)]
    return []


async def test_every_ref_resolves_and_every_error_has_the_error_body(api: Api) -> None:
    schema = (await api.client.get("/openapi.json")).json()
    found = refs(schema)
    assert found
    for ref in found:
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.removeprefix("#/components/schemas/") in schema["components"]["schemas"]
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert "503" in responses, (method, path)
            for status, response in responses.items():
                if int(status) >= 400:
                    body = response["content"]["application/json"]["schema"]
                    assert body == {"$ref": "#/components/schemas/ErrorOut"}, (method, path)
    batch = schema["paths"]["/v1/transactions/batch"]["post"]["requestBody"]
    assert batch["required"] is True
    submit = schema["paths"]["/v1/transactions"]["post"]["requestBody"]["content"]
    shapes = submit["application/json"]["schema"]["oneOf"]
    assert [s["properties"]["kind"]["enum"] for s in shapes] == [
        ["dataset"],
        ["model"],
        ["inference"],
        ["attestation"],
        ["revocation"],
    ]
    assert {s["properties"]["network"]["enum"][0] for s in shapes} == {"regtest"}


async def test_a_405_says_which_methods_the_path_takes(api: Api) -> None:
    response = await api.client.delete("/v1/status")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"
    assert response.json()["error"]["code"] == "method-not-allowed"
    literal = await api.client.put("/v1/transactions/batch")
    assert literal.headers["allow"] == "POST"  # not the GET of /v1/transactions/{txid}


async def test_a_whole_number_written_with_a_fraction_is_that_integer(api: Api) -> None:
    tx = make_tx(ALICE, "dataset", dataset_payload("whole"))
    text = json.dumps(tx.to_json()).replace(f'"nonce": {tx.nonce}', f'"nonce": {tx.nonce}.0')
    assert f"{tx.nonce}.0" in text
    response = await api.client.post(
        "/v1/transactions", content=text, headers={"content-type": "application/json"}
    )
    assert response.status_code == 202, response.text
    assert response.json()["txid"] == tx.txid  # the same canonical bytes, the same signature
    mined = await api.client.post("/v1/admin/mine", json={"blocks": 1.0}, headers=ADMIN)
    assert mined.status_code == 200
    refused = await api.client.post("/v1/admin/mine", json={"blocks": True}, headers=ADMIN)
    assert refused.status_code == 422


async def test_an_unusable_peer_url_is_a_400(api: Api) -> None:
    response = await api.client.post(
        "/v1/admin/peers", json={"url": "https://]\u00c6"}, headers=ADMIN
    )
    assert (response.status_code, response.json()["error"]["code"]) == (400, "bad-peer-url")
    malformed = await api.client.post("/v1/admin/peers", json={"url": "ftp://x"}, headers=ADMIN)
    assert malformed.status_code == 422
