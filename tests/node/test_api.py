"""In-process API tests: every endpoint of design.md §4 and every error code it promises."""

from __future__ import annotations

import gc
import json
from pathlib import Path

import httpx
import pytest

from consensus.block import Header
from consensus.encoding import canonical_json
from consensus.merkle import verify_inclusion
from consensus.tx import SIGNING_DOMAIN, Transaction
from node.api.app import GC_THRESHOLDS, create_app
from tests.consensus.conftest import (
    ALICE,
    ALICE_HEX,
    BOB,
    dataset_payload,
    digest,
    inference_payload,
    make_tx,
    model_payload,
    revocation_payload,
)
from tests.node.conftest import ADMIN, Api, open_api, regtest_settings


def oversized_tx() -> dict[str, object]:
    """A correctly signed transaction whose canonical form is over 8 KiB."""
    body = {
        "version": 1,
        "network": "regtest",
        "kind": "dataset",
        "signer": ALICE_HEX,
        "payload": dataset_payload("big", metadata={"x": "a" * 9000}),
        "nonce": 77,
        "timestamp": 1,
    }
    signature = ALICE.sign(SIGNING_DOMAIN + canonical_json(body)).hex()
    return {**body, "signature": signature}


def error_of(response: httpx.Response) -> tuple[int, str]:
    body = response.json()
    assert set(body) == {"error"}, body
    assert body["error"]["message"], body
    return response.status_code, body["error"]["code"]


async def test_health_status_and_metrics(api: Api) -> None:
    assert await api.get("/healthz") == {"status": "ok"}
    status = await api.get("/v1/status")
    assert status["network"] == "regtest"
    assert status["height"] == 0
    assert status["best_hash"] == status["genesis_hash"]
    assert status["mempool"] == {"count": 0, "bytes": 0}
    assert status["mining"] is False and status["syncing"] is False
    assert int(status["chain_work"], 16) == 2
    await api.mine(2)
    metrics = (await api.client.get("/metrics")).text
    assert "ailedger_height 2.0" in metrics
    assert "ailedger_blocks_connected_total 2.0" in metrics


async def test_submit_mine_confirm_and_prove(api: Api) -> None:
    tx = make_tx(ALICE, "dataset", dataset_payload("corpus"))
    response = await api.submit(tx)
    assert response.status_code == 202
    assert response.json() == {"txid": tx.txid, "status": "pending"}
    pending = await api.get(f"/v1/transactions/{tx.txid}")
    assert pending["status"] == "pending" and pending["confirmations"] == 0
    assert (await api.get("/v1/mempool"))["txids"] == [tx.txid]

    (block_hash,) = await api.mine(1)
    await api.mine(1)
    confirmed = await api.get(f"/v1/transactions/{tx.txid}")
    assert confirmed["status"] == "confirmed"
    assert (confirmed["block_hash"], confirmed["height"], confirmed["index"]) == (block_hash, 1, 0)
    assert confirmed["confirmations"] == 2
    assert (await api.get("/v1/mempool"))["count"] == 0

    proof = await api.get(f"/v1/transactions/{tx.txid}/proof")
    header = Header.from_hex(proof["header"])
    assert header.hash == block_hash and proof["confirmations"] == 2
    leaf = bytes.fromhex(proof["leaf"])
    assert Transaction.from_json(json.loads(leaf)).txid == tx.txid
    path = [bytes.fromhex(p) for p in proof["audit_path"]]
    root = bytes.fromhex(header.merkle_root)
    assert verify_inclusion(leaf, proof["index"], proof["tree_size"], path, root)
    assert not verify_inclusion(leaf + b" ", proof["index"], proof["tree_size"], path, root)


async def test_blocks_headers_and_tips(api: Api) -> None:
    tx = make_tx(ALICE, "dataset", dataset_payload("blocks"))
    await api.accept(tx)
    hashes = await api.mine(3)
    blocks = (await api.get("/v1/blocks", from_height=0, limit=10))["blocks"]
    assert [b["height"] for b in blocks] == [0, 1, 2, 3]
    assert [b["hash"] for b in blocks[1:]] == hashes
    assert [b["tx_count"] for b in blocks] == [0, 1, 0, 0]
    by_height = await api.get("/v1/blocks/1")
    assert by_height["hash"] == hashes[0]
    assert by_height["transactions"][0] == tx.to_json()
    assert (await api.get(f"/v1/blocks/{hashes[0]}")) == by_height
    headers = (await api.get("/v1/headers", from_height=1, count=2))["headers"]
    assert [Header.from_hex(h).hash for h in headers] == hashes[:2]
    tips = (await api.get("/v1/chain/tips"))["tips"]
    assert tips == [
        {
            "hash": hashes[-1],
            "height": 3,
            "chain_work": f"{8:064x}",
            "branch_len": 0,
            "status": "active",
        }
    ]


async def test_records_filters_and_pagination(api: Api) -> None:
    datasets = [make_tx(ALICE, "dataset", dataset_payload(f"d{i}")) for i in range(5)]
    other = make_tx(BOB, "dataset", dataset_payload("bob"))
    await api.accept(*datasets, other)
    await api.mine(1)
    by_digest = await api.get("/v1/records", digest=digest("dataset:d3"))
    assert [r["txid"] for r in by_digest["records"]] == [datasets[3].txid]
    assert by_digest["records"][0]["revoked"] is False
    seen: list[str] = []
    cursor = None
    while True:
        params = {"signer": ALICE_HEX, "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = await api.get("/v1/records", **params)
        seen += [r["txid"] for r in page["records"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [tx.txid for tx in reversed(datasets)]
    kinds = await api.get("/v1/records", kind="model")
    assert kinds == {"records": [], "next_cursor": None}
    bad = await api.client.get("/v1/records", params={"cursor": "nonsense"})
    assert error_of(bad) == (422, "bad-cursor")
    bad = await api.client.get("/v1/records", params={"kind": "poem"})
    assert error_of(bad) == (422, "bad-request")


async def test_lineage_and_revocation(api: Api) -> None:
    data = make_tx(ALICE, "dataset", dataset_payload("train"))
    await api.accept(data)
    model = make_tx(ALICE, "model", model_payload("net", inputs=[(data.txid, "training_data")]))
    await api.accept(model)
    inference = make_tx(BOB, "inference", inference_payload(model.txid))
    await api.accept(inference)
    await api.mine(1)

    up = await api.get(f"/v1/records/{inference.txid}/lineage", direction="ancestors")
    assert [n["txid"] for n in up["nodes"]] == [inference.txid, data.txid, model.txid]
    assert {(e["from"], e["to"], e["role"]) for e in up["edges"]} == {
        (inference.txid, model.txid, "model"),
        (model.txid, data.txid, "training_data"),
    }
    down = await api.get(f"/v1/records/{data.txid}/lineage", direction="descendants", depth=1)
    assert [n["txid"] for n in down["nodes"]] == [data.txid, model.txid]

    wrong_signer = make_tx(BOB, "revocation", revocation_payload(model.txid))
    assert error_of(await api.submit(wrong_signer)) == (400, "not-subject-signer")
    revoke = make_tx(ALICE, "revocation", revocation_payload(model.txid, reason="leak"))
    await api.accept(revoke)
    again = make_tx(ALICE, "revocation", revocation_payload(model.txid))
    assert error_of(await api.submit(again)) == (409, "already-revoked")
    await api.mine(1)
    view = await api.get(f"/v1/records/{model.txid}")
    assert view["revoked"] is True and view["revoked_by"] == revoke.txid
    assert error_of(await api.submit(again)) == (409, "already-revoked")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{not json", 422, "malformed-json"),
        (b'{"a": 1, "a": 2}', 422, "malformed-json"),
        (b'{"a": NaN}', 422, "malformed-json"),
        (b"[]", 422, "bad-tx-schema"),
        (b'{"version": 1}', 422, "bad-tx-schema"),
    ],
)
async def test_malformed_bodies(api: Api, body: bytes, status: int, code: str) -> None:
    response = await api.client.post(
        "/v1/transactions", content=body, headers={"content-type": "application/json"}
    )
    assert error_of(response) == (status, code)


async def test_rejections_have_stable_codes(api: Api) -> None:
    data = make_tx(ALICE, "dataset", dataset_payload("base"))
    await api.accept(data)

    cases: list[tuple[object, int, str]] = []
    cases.append(
        (
            make_tx(ALICE, "dataset", dataset_payload("x"), network="devnet").to_json(),
            400,
            "wrong-network",
        )
    )
    forged = make_tx(ALICE, "dataset", dataset_payload("y")).to_json()
    forged["payload"]["name"] = "z"
    cases.append((forged, 400, "bad-signature"))
    cases.append(
        (
            make_tx(ALICE, "inference", inference_payload("ab" * 32)).to_json(),
            400,
            "unknown-reference",
        )
    )
    cases.append(
        (
            make_tx(ALICE, "inference", inference_payload(data.txid)).to_json(),
            400,
            "bad-reference-kind",
        )
    )
    cases.append((data.to_json(), 409, "duplicate"))
    cases.append(
        (
            make_tx(ALICE, "dataset", dataset_payload("n"), nonce=data.nonce).to_json(),
            409,
            "duplicate-nonce",
        )
    )
    cases.append((oversized_tx(), 413, "tx-too-large"))
    for body, status, code in cases:
        response = await api.client.post("/v1/transactions", json=body)
        assert error_of(response) == (status, code), (code, response.text)
    duplicate = await api.client.post("/v1/transactions", json=data.to_json())
    assert duplicate.json()["error"]["txid"] == data.txid
    await api.mine(1)
    confirmed_dup = await api.client.post("/v1/transactions", json=data.to_json())
    assert error_of(confirmed_dup) == (409, "duplicate")
    metrics = (await api.client.get("/metrics")).text
    assert 'ailedger_transactions_rejected_total{code="bad-signature"} 1.0' in metrics


async def test_batch_reports_each_outcome(api: Api) -> None:
    good = make_tx(ALICE, "dataset", dataset_payload("batch"))
    child = make_tx(ALICE, "dataset", dataset_payload("child", derived_from=[good.txid]))
    forged = make_tx(ALICE, "dataset", dataset_payload("f")).to_json()
    forged["nonce"] += 1
    body = {"transactions": [good.to_json(), child.to_json(), good.to_json(), forged, {"x": 1}]}
    response = await api.client.post("/v1/transactions/batch", json=body)
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["status"] for r in results] == [
        "accepted",
        "accepted",
        "duplicate",
        "rejected",
        "rejected",
    ]
    assert results[3]["error"]["code"] == "bad-signature"
    assert results[4]["error"]["code"] == "bad-tx-schema"
    too_many = {"transactions": [{}] * 1001}
    assert error_of(await api.client.post("/v1/transactions/batch", json=too_many))[0] == 413
    assert error_of(await api.client.post("/v1/transactions/batch", json=[]))[1] == "bad-request"


async def test_not_found(api: Api) -> None:
    for path in (
        "/v1/transactions/" + "00" * 32,
        "/v1/transactions/" + "00" * 32 + "/proof",
        "/v1/records/" + "00" * 32,
        "/v1/blocks/" + "00" * 32,
        "/v1/blocks/99",
        "/v1/records/" + "00" * 32 + "/lineage",
        "/v1/nothing",
    ):
        assert error_of(await api.client.get(path)) == (404, "not-found"), path


async def test_query_validation_is_422(api: Api) -> None:
    response = await api.client.get("/v1/headers", params={"count": 2001})
    assert error_of(response) == (422, "bad-request")
    response = await api.client.get("/v1/blocks", params={"limit": 0})
    assert error_of(response) == (422, "bad-request")


async def test_admin_auth(api: Api, tmp_path: Path) -> None:
    mine = {"blocks": 1}
    assert error_of(await api.client.post("/v1/admin/mine", json=mine)) == (401, "unauthorized")
    wrong = {"Authorization": "Bearer nope"}
    response = await api.client.post("/v1/admin/mine", json=mine, headers=wrong)
    assert error_of(response) == (401, "unauthorized")
    bad_body = await api.client.post("/v1/admin/mine", json={"blocks": 0}, headers=ADMIN)
    assert error_of(bad_body) == (422, "bad-request")
    async with open_api(regtest_settings(tmp_path / "noadmin", admin_token=None)) as other:
        response = await other.client.post("/v1/admin/mine", json=mine, headers=ADMIN)
        assert error_of(response) == (403, "admin-disabled")


async def test_body_limit_and_rate_limit(tmp_path: Path) -> None:
    settings = regtest_settings(
        tmp_path, max_body_bytes=16_384, rate_limit_per_s=0.001, rate_limit_burst=2
    )
    async with open_api(settings) as api:
        big = b"[" + b"1," * 10_000 + b"1]"
        response = await api.client.post("/v1/transactions", content=big)
        assert error_of(response) == (413, "body-too-large")
        for _ in range(2):  # the burst
            response = await api.client.post("/v1/transactions", json={})
            assert response.status_code == 422
        response = await api.client.post("/v1/transactions", json={})
        assert error_of(response) == (429, "rate-limited")
        assert response.headers["retry-after"]
        assert (await api.client.get("/v1/status")).status_code == 200


async def test_mempool_full(tmp_path: Path) -> None:
    async with open_api(regtest_settings(tmp_path, mempool_max_count=2)) as api:
        txs = [make_tx(ALICE, "dataset", dataset_payload(f"full{i}")) for i in range(3)]
        await api.accept(*txs[:2])
        assert error_of(await api.submit(txs[2])) == (503, "mempool-full")
        await api.mine(1)
        await api.accept(txs[2])


async def test_restart_keeps_chain_and_mempool(tmp_path: Path) -> None:
    settings = regtest_settings(tmp_path)
    confirmed = make_tx(ALICE, "dataset", dataset_payload("kept"))
    pending = make_tx(ALICE, "dataset", dataset_payload("pending", derived_from=[confirmed.txid]))
    async with open_api(settings) as api:
        await api.accept(confirmed)
        hashes = await api.mine(2)
        await api.accept(pending)
    async with open_api(settings) as api:
        status = await api.get("/v1/status")
        assert (status["height"], status["best_hash"]) == (2, hashes[-1])
        assert (await api.get("/v1/mempool"))["txids"] == [pending.txid]
        await api.mine(1)
        assert (await api.get(f"/v1/transactions/{pending.txid}"))["height"] == 3


async def test_openapi_documents_every_path(api: Api) -> None:
    spec = await api.get("/openapi.json")
    for path in (
        "/v1/status",
        "/v1/blocks",
        "/v1/blocks/{block_id}",
        "/v1/headers",
        "/v1/chain/tips",
        "/v1/transactions",
        "/v1/transactions/batch",
        "/v1/transactions/{txid}",
        "/v1/transactions/{txid}/proof",
        "/v1/records",
        "/v1/records/{txid}",
        "/v1/records/{txid}/lineage",
        "/v1/mempool",
        "/v1/admin/mine",
        "/v1/admin/mining",
    ):
        assert path in spec["paths"], path
    body = spec["paths"]["/v1/transactions"]["post"]["requestBody"]
    assert "signature" in json.dumps(body)


async def test_a_node_process_tunes_its_garbage_collector_once_started(tmp_path: Path) -> None:
    app = create_app(regtest_settings(tmp_path), tune_gc=True)
    assert gc.get_freeze_count() == 0
    thresholds = gc.get_threshold()
    try:
        async with app.router.lifespan_context(app):
            assert gc.get_freeze_count() > 0
            node = app.state.node  # started, then frozen: out of the collector's sight
            assert not any(obj is node for obj in gc.get_objects())
            assert gc.get_threshold() == GC_THRESHOLDS
    finally:  # a test process runs many apps: let it collect as before
        gc.unfreeze()
        gc.set_threshold(*thresholds)
