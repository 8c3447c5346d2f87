"""A small typed client for a node's REST API (design §4), and a light verifier.

    with Client("http://127.0.0.1:8000") as node:
        key = private_key_from_pem(Path("me.pem").read_bytes())
        txid = node.register_dataset("data/", key=key, name="reviews-2026")
        node.wait_for_confirmation(txid)

    report = node.verifier.verify_artifact(digest_path("model.bin"), ["http://a:8000", ...])

Errors (one hierarchy, translated once at the HTTP boundary)::

    ApiError(status, code, message)   the node answered with an error body, or nonsense
    └── NodeUnavailable               no answer: connection refused, timeout, broken stream

``node.verifier.verify_artifact`` trusts no single node: it checks every node's header chain itself,
picks the valid chain with the most work, and accepts a record only with an inclusion
proof against that chain (``node.verifier``; its checks, free of I/O, are ``node.proofs``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import quote

import httpx

from consensus.tx import Transaction
from node.records import RecordWriter, new_nonce, now_ms

__all__ = [
    "HEADERS_PAGE",
    "ApiError",
    "Client",
    "NodeUnavailable",
    "new_nonce",
    "now_ms",
]

HEADERS_PAGE = 2000
_MAX_PAGES = 10_000


class ApiError(Exception):
    """The node refused a request or answered nonsense: ``status``, ``code``, ``message``.

    ``code`` is the API's kebab-case error code ("bad-signature", "not-found", ...);
    ``bad-response`` when the answer was not the JSON the API promises. ``body`` holds
    the parsed error body (a 409 carries the conflicting txid there).
    """

    def __init__(
        self, status: int | None, code: str, message: str, *, url: str = "", body: Any = None
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.url = url
        self.body = body
        super().__init__(f"{code}: {message}")


class NodeUnavailable(ApiError):
    """No answer from the node: it is down, unreachable, or too slow."""


class Client(RecordWriter):
    """A node's REST API, synchronous (one ``httpx.Client``; use it from one thread).

    ``transport`` replaces the network (tests pass ``httpx.MockTransport``). ``http`` is a
    ready ``httpx.Client`` to use instead, e.g. ``fastapi.testclient.TestClient(app)`` for
    an in-process node (``httpx.ASGITransport`` is async-only). ``admin_token`` is sent
    only to ``/v1/admin/...``. A record of each kind is signed and submitted by the
    methods of ``RecordWriter`` (``register_dataset``, ``register_model``, ...).
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 10.0,
        admin_token: str | None = None,
        transport: httpx.BaseTransport | None = None,
        http: httpx.Client | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.admin_token = admin_token
        self._network: str | None = None
        self._owns_http = http is None  # a client passed in is its owner's to close
        self._http = http or httpx.Client(
            base_url=self.base_url, timeout=timeout, transport=transport
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __repr__(self) -> str:
        return f"Client({self.base_url!r})"

    # ---------------------------------------------------------------- HTTP, once

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        admin: bool = False,
    ) -> Any:
        headers = {}
        if admin and self.admin_token:
            headers["Authorization"] = f"Bearer {self.admin_token}"
        query = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = self._http.request(method, path, params=query, json=json, headers=headers)
        except httpx.HTTPError as exc:
            what = str(exc) or type(exc).__name__
            raise NodeUnavailable(
                None, "node-unavailable", f"{self.base_url}: {what}", url=self.base_url
            ) from exc
        if response.status_code >= 400:
            raise _error_from(response, self.base_url)
        try:
            return response.json()
        except ValueError as exc:
            raise ApiError(
                response.status_code,
                "bad-response",
                f"{self.base_url}{path}: answer is not JSON",
                url=self.base_url,
            ) from exc

    def _object(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        answer = self._request(method, path, **kwargs)
        if not isinstance(answer, dict):
            raise ApiError(
                200, "bad-response", f"{self.base_url}{path}: answer is not a JSON object"
            )
        return answer

    def _list(self, path: str, key: str, **kwargs: Any) -> list[Any]:
        answer = self._object("GET", path, **kwargs).get(key)
        if not isinstance(answer, list):
            raise ApiError(200, "bad-response", f"{self.base_url}{path}: no list {key!r}")
        return answer

    # ---------------------------------------------------------------- reads

    def health(self) -> dict[str, Any]:
        return self._object("GET", "/healthz")

    def status(self) -> dict[str, Any]:
        status = self._object("GET", "/v1/status")
        if isinstance(status.get("network"), str):
            self._network = status["network"]
        return status

    def network(self) -> str:
        """The node's network name (asked once, then remembered)."""
        if self._network is None:
            self.status()
        if self._network is None:
            raise ApiError(200, "bad-response", f"{self.base_url}: status names no network")
        return self._network

    def block(self, hash_or_height: str | int) -> dict[str, Any]:
        return self._object("GET", f"/v1/blocks/{_segment(hash_or_height)}")

    def blocks(self, from_height: int | None = None, limit: int | None = None) -> list[Any]:
        params = {"from_height": from_height, "limit": limit}
        return self._list("/v1/blocks", "blocks", params=params)

    def headers(self, from_height: int = 0, count: int = HEADERS_PAGE) -> list[str]:
        """Up to ``count`` (≤ 2000) active-chain headers as 128-byte hex, from a height."""
        params = {"from_height": from_height, "count": count}
        return self._list("/v1/headers", "headers", params=params)

    def all_headers(self) -> list[str]:
        """Every active-chain header from genesis, page by page."""
        found: list[str] = []
        for _ in range(_MAX_PAGES):
            page = self.headers(len(found), HEADERS_PAGE)
            found += page
            if len(page) < HEADERS_PAGE:
                return found
        raise ApiError(200, "bad-response", f"{self.base_url}: endless header chain")

    def tips(self) -> list[Any]:
        return self._list("/v1/chain/tips", "tips")

    def transaction(self, txid: str) -> dict[str, Any]:
        return self._object("GET", f"/v1/transactions/{_segment(txid)}")

    def proof(self, txid: str) -> dict[str, Any]:
        return self._object("GET", f"/v1/transactions/{_segment(txid)}/proof")

    def records(
        self,
        *,
        digest: str | None = None,
        kind: str | None = None,
        signer: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        """One page: ``{"records": [...], "next_cursor": str | None}``, newest first."""
        params = {"digest": digest, "kind": kind, "signer": signer, "limit": limit}
        return self._object("GET", "/v1/records", params={**params, "cursor": cursor})

    def records_all(
        self,
        *,
        digest: str | None = None,
        kind: str | None = None,
        signer: str | None = None,
        limit: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every matching record, following ``next_cursor`` (``limit`` is the page size)."""
        cursor: str | None = None
        seen: set[str] = set()
        for _ in range(_MAX_PAGES):
            page = self.records(digest=digest, kind=kind, signer=signer, limit=limit, cursor=cursor)
            records = page.get("records")
            if not isinstance(records, list):
                raise ApiError(200, "bad-response", f"{self.base_url}: no list 'records'")
            yield from (r for r in records if isinstance(r, dict))
            cursor = page.get("next_cursor")
            if not records or not isinstance(cursor, str) or cursor in seen:
                return
            seen.add(cursor)

    def record(self, txid: str) -> dict[str, Any]:
        return self._object("GET", f"/v1/records/{_segment(txid)}")

    def lineage(
        self, txid: str, direction: str = "ancestors", depth: int | None = None
    ) -> dict[str, Any]:
        """``{"root", "nodes": [record views], "edges": [{"from", "to", "role"}]}``."""
        params = {"direction": direction, "depth": depth}
        return self._object("GET", f"/v1/records/{_segment(txid)}/lineage", params=params)

    def mempool(self) -> dict[str, Any]:
        return self._object("GET", "/v1/mempool")

    def peers(self) -> list[Any]:
        return self._list("/v1/peers", "peers")

    # ---------------------------------------------------------------- writes

    def submit(self, tx: Transaction) -> dict[str, Any]:
        """Send one signed transaction: ``{"txid", "status": "pending"}`` on 202."""
        return self._object("POST", "/v1/transactions", json=tx.to_json())

    def submit_batch(self, txs: Iterable[Transaction]) -> list[Any]:
        """Send up to 1000 transactions; one result per transaction, in order."""
        body = {"transactions": [tx.to_json() for tx in txs]}
        answer = self._object("POST", "/v1/transactions/batch", json=body).get("results")
        if not isinstance(answer, list):
            raise ApiError(200, "bad-response", f"{self.base_url}: no list 'results'")
        return answer

    def wait_for_confirmation(
        self, txid: str, confirmations: int = 1, *, timeout: float = 60.0, interval: float = 0.5
    ) -> dict[str, Any]:
        """Poll until ``txid`` has ``confirmations``; ``TimeoutError`` after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while True:
            tx = self.transaction(txid)
            if tx.get("status") == "confirmed" and tx.get("confirmations", 0) >= confirmations:
                return tx
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{txid} has not {confirmations} confirmation(s) yet")
            time.sleep(interval)

    # ---------------------------------------------------------------- admin

    def mine(self, blocks: int = 1) -> list[Any]:
        """Mine ``blocks`` blocks now (regtest); their hashes."""
        answer = self._object("POST", "/v1/admin/mine", json={"blocks": blocks}, admin=True)
        hashes = answer.get("hashes")
        if not isinstance(hashes, list):
            raise ApiError(200, "bad-response", f"{self.base_url}: no list 'hashes'")
        return hashes

    def set_mining(self, enabled: bool) -> dict[str, Any]:
        return self._object("POST", "/v1/admin/mining", json={"enabled": enabled}, admin=True)

    def add_peer(self, url: str) -> dict[str, Any]:
        return self._object("POST", "/v1/admin/peers", json={"url": url}, admin=True)

    def remove_peer(self, url: str) -> dict[str, Any]:
        return self._object("DELETE", "/v1/admin/peers", params={"url": url}, admin=True)

    def set_network_active(self, active: bool) -> dict[str, Any]:
        return self._object("POST", "/v1/admin/network", json={"active": active}, admin=True)

    # ---------------------------------------------------------------- sign and submit

    def submit_signed(self, tx: Transaction) -> str:
        """``submit`` a record ``RecordWriter`` signed; its txid, as the node confirms it."""
        answer = self.submit(tx)
        if answer.get("txid") != tx.txid:
            raise ApiError(
                202, "bad-response", f"node answered txid {answer.get('txid')}, not {tx.txid}"
            )
        return tx.txid


def _segment(value: str | int) -> str:
    """A path segment: quoted, so a txid like "../admin" cannot leave its route."""
    return quote(str(value), safe="")


def _error_from(response: httpx.Response, base_url: str) -> ApiError:
    """The API error of a 4xx/5xx answer; a body not in the error shape still yields one."""
    body: Any = None
    code, message = f"http-{response.status_code}", response.reason_phrase or "error"
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        if text:
            message = text[:200]
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        code = str(error.get("code") or code)
        message = str(error.get("message") or message)
    return ApiError(response.status_code, code, message, url=base_url, body=body)
