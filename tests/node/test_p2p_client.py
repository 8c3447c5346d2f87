"""The HTTP layer to peers: every answer mapped once, JSON or raw."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from node.p2p.client import PeerClient, PeerRefused, PeerUnavailable

URL = "http://peer.test/p2p/blocks"
REFUSAL = {"error": {"code": "bad-request", "message": "ask for 1 to 16 blocks"}}


def client(handler: Callable[[httpx.Request], httpx.Response]) -> PeerClient:
    return PeerClient("id", "http://me.test", transport=httpx.MockTransport(handler))


async def test_call_returns_the_json_answer_and_sends_who_we_are() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"ok": True})

    peer = client(answer)
    assert await peer.call("GET", URL, params=[("hash", "a"), ("hash", "b")]) == {"ok": True}
    assert seen[0].url.params.get_list("hash") == ["a", "b"]
    assert seen[0].headers["X-Ailedger-Listen"] == "http://me.test"
    await peer.aclose()


async def test_fetch_returns_the_raw_body_untouched() -> None:
    peer = client(lambda request: httpx.Response(200, content=b"not even JSON"))
    assert await peer.fetch(URL, params=[("hash", "a")]) == b"not even JSON"
    await peer.aclose()


@pytest.mark.parametrize("fetch", [False, True])
@pytest.mark.parametrize(
    ("response", "error", "detail"),
    [
        (httpx.Response(422, json=REFUSAL), PeerRefused, "422 bad-request: ask for 1 to 16"),
        (httpx.Response(503, json=REFUSAL), PeerRefused, "503 bad-request"),
        (httpx.Response(404, content=b"<html>"), None, None),
        (httpx.Response(500, json=REFUSAL), PeerUnavailable, ": 500"),
        (httpx.Response(502, content=b"bad gateway"), PeerUnavailable, None),
    ],
)
async def test_errors_are_mapped_the_same_for_json_and_raw_answers(
    fetch: bool, response: httpx.Response, error: type[Exception] | None, detail: str | None
) -> None:
    peer = client(lambda request: response)
    if error is None:  # a 4xx without an error body: JSON callers cannot read it at all
        error, detail = (PeerRefused, "404 error") if fetch else (PeerUnavailable, "not JSON")
    with pytest.raises(error) as caught:
        if fetch:
            await peer.fetch(URL)
        else:
            await peer.call("GET", URL)
    if detail is not None:
        assert detail in str(caught.value)
    await peer.aclose()


async def test_call_refuses_a_success_that_is_not_json() -> None:
    peer = client(lambda request: httpx.Response(200, content=b"<html>"))
    with pytest.raises(PeerUnavailable, match="not JSON"):
        await peer.call("GET", URL)
    await peer.aclose()


@pytest.mark.parametrize("fetch", [False, True])
async def test_a_transport_failure_is_peer_unavailable(fetch: bool) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    peer = client(refuse)
    with pytest.raises(PeerUnavailable, match="ConnectError"):
        await (peer.fetch(URL) if fetch else peer.call("GET", URL))
    await peer.aclose()
