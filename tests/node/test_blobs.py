"""The blob store through the API (design §12): upload, download with Range, quota,
limits, clean-up of unreferenced blobs (clock injected), and replication's peer rules."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from node.api import create_app
from node.blobs import BlobStore, Replicator
from node.blobs.refs import storage_ref
from node.blobs.replication import Want
from node.config import parse_size
from node.daemon import Node
from node.p2p.identity import NodeKey
from node.records import now_ms
from tests.consensus.conftest import ALICE, dataset_payload, make_tx
from tests.node.conftest import Api, open_session, regtest_settings


def named(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Clock:
    """Wall time plus an offset the test moves."""

    def __init__(self) -> None:
        self.offset = 0

    def __call__(self) -> int:
        return now_ms() + self.offset


@asynccontextmanager
async def blob_api(
    tmp_path: Path, clock: Clock | None = None, **settings: Any
) -> AsyncIterator[Api]:
    values = {"blob_quota": "1MiB", **settings}
    config = regtest_settings(tmp_path, **values)
    node = Node(config, clock=clock or now_ms)
    app = create_app(config, node=node)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("10.0.0.1", 1234))
        async with httpx.AsyncClient(transport=transport, base_url="http://node.test") as client:
            yield Api(client, node, app.state.p2p)


async def test_upload_then_download_whole_ranged_and_head(tmp_path: Path) -> None:
    data = bytes(range(256)) * 40
    async with blob_api(tmp_path) as api:
        first = await api.client.put(f"/v1/blobs/{named(data)}", content=data)
        assert first.status_code == 201, first.text
        assert first.json() == {"digest": named(data), "size": len(data), "status": "stored"}
        again = await api.client.put(f"/v1/blobs/{named(data)}", content=data)
        assert again.status_code == 200 and again.json()["status"] == "held"

        whole = await api.client.get(f"/v1/blobs/{named(data)}")
        assert whole.status_code == 200 and whole.content == data
        assert whole.headers["accept-ranges"] == "bytes"
        part = await api.client.get(f"/v1/blobs/{named(data)}", headers={"Range": "bytes=10-19"})
        assert part.status_code == 206 and part.content == data[10:20]
        assert part.headers["content-range"] == f"bytes 10-19/{len(data)}"
        tail = await api.client.get(f"/v1/blobs/{named(data)}", headers={"Range": "bytes=-5"})
        assert tail.status_code == 206 and tail.content == data[-5:]
        beyond = await api.client.get(
            f"/v1/blobs/{named(data)}", headers={"Range": f"bytes={len(data)}-"}
        )
        assert beyond.status_code == 416
        assert beyond.json()["error"]["code"] == "range-not-satisfiable"
        head = await api.client.head(f"/v1/blobs/{named(data)}")
        assert head.status_code == 200 and head.headers["content-length"] == str(len(data))
        assert head.content == b""


async def test_refusals_have_error_bodies_and_keep_nothing(tmp_path: Path) -> None:
    async with blob_api(tmp_path, blob_quota="64KiB") as api:
        wrong = await api.client.put(f"/v1/blobs/{named(b'other')}", content=b"these bytes")
        assert wrong.status_code == 422
        assert wrong.json()["error"]["code"] == "digest-mismatch"
        bad_name = await api.client.put("/v1/blobs/sha256:XYZ", content=b"x")
        assert bad_name.status_code == 422
        missing = await api.client.get(f"/v1/blobs/{named(b'nothing')}")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not-found"

        big = b"q" * (48 << 10)
        assert (await api.client.put(f"/v1/blobs/{named(big)}", content=big)).status_code == 201
        more = b"r" * (20 << 10)
        full = await api.client.put(f"/v1/blobs/{named(more)}", content=more)
        assert full.status_code == 507
        assert full.json()["error"]["code"] == "quota-exceeded"
        # Without a length, the quota still stops the stream.
        streamed = await api.client.put(f"/v1/blobs/{named(more)}", content=_chunks(more, 4096))
        assert streamed.status_code == 507
        store = api.node.blobs.held()
        assert named(more) not in store and named(b"other") not in store
        assert store.used == len(big)
        assert list((tmp_path / "blobs" / "tmp").iterdir()) == []


async def _chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def test_a_node_without_a_quota_keeps_no_blobs(tmp_path: Path) -> None:
    async with blob_api(tmp_path, blob_quota=None) as api:
        answer = await api.client.put(f"/v1/blobs/{named(b'x')}", content=b"x")
        assert answer.status_code == 507
        assert answer.json()["error"]["code"] == "blobs-disabled"
        assert (await api.client.get(f"/v1/blobs/{named(b'x')}")).status_code == 404


async def test_uploads_are_rate_limited_per_client(tmp_path: Path) -> None:
    async with blob_api(tmp_path, blob_uploads_per_minute=2) as api:
        for data in (b"one", b"two"):
            assert (await api.client.put(f"/v1/blobs/{named(data)}", content=data)).is_success
        third = await api.client.put(f"/v1/blobs/{named(b'three')}", content=b"three")
        assert third.status_code == 429
        assert third.json()["error"]["code"] == "upload-rate-limited"
        assert int(third.headers["retry-after"]) >= 1


async def test_too_large_a_blob_is_refused(tmp_path: Path) -> None:
    async with blob_api(tmp_path, blob_max_size=1000) as api:
        data = b"z" * 1001
        answer = await api.client.put(f"/v1/blobs/{named(data)}", content=data)
        assert answer.status_code == 413
        assert answer.json()["error"]["code"] == "blob-too-large"


def storing_tx(name: str, ciphertext: bytes) -> Any:
    storage = {
        "scheme": "age-v1",
        "ciphertext_digest": named(ciphertext),
        "ciphertext_size": len(ciphertext),
        "recipients": ["age1example"],
    }
    return make_tx(ALICE, "dataset", dataset_payload(name, metadata={"storage": storage}))


async def test_unreferenced_blobs_go_after_the_grace_period(tmp_path: Path) -> None:
    clock = Clock()
    kept, dropped = b"referenced ciphertext", b"nobody names me"
    async with blob_api(tmp_path, clock, blob_grace_s=3600) as api:
        for data in (kept, dropped):
            assert (await api.client.put(f"/v1/blobs/{named(data)}", content=data)).is_success
        await api.accept(storing_tx("kept", kept))
        await api.mine(1)
        blobs = api.node.blobs
        clock.offset = 3000 * 1000  # within the grace period: nothing goes
        assert blobs.collect_garbage() == []
        clock.offset = 3700 * 1000
        assert blobs.collect_garbage() == [named(dropped)]
        assert (await api.client.get(f"/v1/blobs/{named(dropped)}")).status_code == 404
        assert (await api.client.get(f"/v1/blobs/{named(kept)}")).content == kept


async def test_a_restarted_node_knows_what_the_chain_references(tmp_path: Path) -> None:
    clock = Clock()
    kept = b"still referenced after a restart"
    async with blob_api(tmp_path, clock, blob_grace_s=1) as api:
        await api.client.put(f"/v1/blobs/{named(kept)}", content=kept)
        await api.accept(storing_tx("kept", kept))
        await api.mine(1)
    clock.offset = 10_000
    async with blob_api(tmp_path, clock, blob_grace_s=1) as api:
        assert named(kept) in api.node.blobs.refs
        assert api.node.blobs.collect_garbage() == []


def test_storage_ref_ignores_what_is_not_a_reference() -> None:
    good = storing_tx("good", b"c")
    assert storage_ref(good) is not None
    for storage in (
        {"scheme": "age-v2", "ciphertext_digest": named(b"c"), "ciphertext_size": 1},
        {"scheme": "age-v1", "ciphertext_digest": "sha256:zz", "ciphertext_size": 1},
        {"scheme": "age-v1", "ciphertext_digest": named(b"c"), "ciphertext_size": -1},
        {"scheme": "age-v1", "ciphertext_digest": named(b"c"), "ciphertext_size": True},
        "not an object",
    ):
        tx = make_tx(ALICE, "dataset", dataset_payload("x", metadata={"storage": storage}))
        assert storage_ref(tx) is None


class FakeLink:
    """Peers as a dict of URL -> bytes served for any blob."""

    def __init__(self, served: dict[str, bytes]) -> None:
        self.served = served
        self.discouraged: list[str] = []
        self.posts: list[tuple[str, Any]] = []

    def peer_urls(self) -> list[str]:
        return list(self.served)

    @asynccontextmanager
    async def get(self, peer_url: str, path: str) -> AsyncIterator[httpx.Response]:
        yield httpx.Response(200, content=self.served[peer_url])

    async def post(self, peer_url: str, path: str, body: Any) -> None:
        self.posts.append((peer_url, body))

    def discourage(self, peer_url: str, reason: str) -> None:
        self.discouraged.append(peer_url)


async def test_replication_discourages_a_peer_serving_a_wrong_blob(tmp_path: Path) -> None:
    data = b"the real ciphertext"
    store = BlobStore.open(tmp_path, quota=1 << 20, max_size=1 << 20, clock=now_ms)
    link = FakeLink({"http://liar": b"something else", "http://honest": data})
    replicator = Replicator(store, link, clock=now_ms)
    replicator.want(named(data), len(data))
    assert await replicator.round() == [named(data)]
    assert link.discouraged == ["http://liar"]
    assert named(data) in store and not replicator.wanted
    assert ("http://liar", {"digests": [named(data)]}) in link.posts  # announced


async def test_replication_waits_and_asks_an_announcer_first(tmp_path: Path) -> None:
    data = b"announced later"
    store = BlobStore.open(tmp_path, quota=1 << 20, max_size=1 << 20, clock=now_ms)
    link = FakeLink({"http://empty": b"nothing useful"})
    replicator = Replicator(store, link, clock=now_ms)
    replicator.want(named(data), len(data))
    assert await replicator.round() == []
    assert replicator.wanted[named(data)].next_try > now_ms()  # paused
    assert await replicator.round() == []  # not due: not tried again
    link.served["http://later"] = data
    assert replicator.announced("http://later", [named(data)]) == 1
    assert await replicator.round() == [named(data)]


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        (None, 10, None),
        ("bytes=0-0", 10, (0, 0)),
        ("bytes=5-", 10, (5, 9)),
        ("bytes=5-100", 10, (5, 9)),
        ("bytes=-3", 10, (7, 9)),
        ("bytes=-30", 10, (0, 9)),
        ("bytes=3-1", 10, None),
        ("bytes=0-1,4-5", 10, None),
        ("items=0-1", 10, None),
        ("bytes=a-b", 10, None),
    ],
)
def test_parse_range(header: str | None, size: int, expected: tuple[int, int] | None) -> None:
    from node.api.routes.blobs import parse_range

    assert parse_range(header, size) == expected


@pytest.mark.parametrize(("header", "size"), [("bytes=10-", 10), ("bytes=-0", 10)])
def test_unsatisfiable_ranges(header: str, size: int) -> None:
    from node.api.routes.blobs import parse_range

    with pytest.raises(ValueError, match="range"):
        parse_range(header, size)


def test_want_is_not_repeated_for_a_held_blob(tmp_path: Path) -> None:
    store = BlobStore.open(tmp_path, quota=100, max_size=100, clock=now_ms)
    replicator = Replicator(store, FakeLink({}), clock=now_ms)
    replicator.want(named(b"x"), 1)
    replicator.want(named(b"x"), 1)
    assert list(replicator.wanted) == [named(b"x")]
    assert isinstance(replicator.wanted[named(b"x")], Want)


async def test_peer_paths_serve_blobs_and_take_announcements(tmp_path: Path) -> None:
    data = b"for a replicating peer"
    async with blob_api(tmp_path) as api:
        await api.client.put(f"/v1/blobs/{named(data)}", content=data)
        path = f"/p2p/blobs/{named(data)}"
        assert (await api.client.get(path)).status_code == 401  # no session: nobody blamed
        session = await open_session(api.client, NodeKey.from_seed(b"\x07" * 32))
        served = await api.client.get(path, headers=session)
        assert served.status_code == 200 and served.content == data
        missing = await api.client.get(f"/p2p/blobs/{named(b'none')}", headers=session)
        assert missing.status_code == 404
        told = await api.client.post("/p2p/blobs", json={"digests": [named(b"x")]}, headers=session)
        assert told.status_code == 200 and told.json() == {"wanted": 0}  # its address unproven
        bad = await api.client.post("/p2p/blobs", json={"digests": ["nope"]}, headers=session)
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "bad-request"


async def test_the_openapi_document_describes_every_blob_route(tmp_path: Path) -> None:
    async with blob_api(tmp_path) as api:
        spec = (await api.client.get("/openapi.json")).json()
    put = spec["paths"]["/v1/blobs/{digest}"]["put"]
    assert {"201", "200", "413", "422", "429", "507"} <= set(put["responses"])
    assert "application/octet-stream" in put["requestBody"]["content"]
    error = put["responses"]["507"]["content"]["application/json"]["schema"]["$ref"]
    assert error.endswith("/ErrorOut")
    assert "head" in spec["paths"]["/v1/blobs/{digest}"]
    assert "416" in spec["paths"]["/p2p/blobs/{digest}"]["get"]["responses"]


@pytest.mark.parametrize(
    ("text", "size"),
    [("4096", 4096), ("512MiB", 512 << 20), ("1GiB", 1 << 30), ("2 kib", 2048), ("7B", 7)],
)
def test_blob_quota_takes_binary_units(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["1GB", "-1MiB", "1.5GiB", "lots"])
def test_a_quota_that_is_not_a_size_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a size"):
        parse_size(text)


async def test_one_client_gets_a_bounded_number_of_uploads_at_once(tmp_path: Path) -> None:
    async with blob_api(tmp_path, blob_uploads_at_once=1) as api:
        api.node.blobs._uploads["10.0.0.1"] = 1  # one upload from this address under way
        answer = await api.client.put(f"/v1/blobs/{named(b'second')}", content=b"second")
        assert answer.status_code == 429
        assert answer.json()["error"]["code"] == "too-many-uploads"
        api.node.blobs._uploads.clear()
        assert (await api.client.put(f"/v1/blobs/{named(b'second')}", content=b"second")).is_success
