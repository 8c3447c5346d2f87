"""The thin HTTP layer to other nodes: one ``httpx.AsyncClient``, explicit timeouts, and
every transport failure mapped once to ``PeerUnavailable``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

__all__ = ["SESSION_HEADER", "PeerClient", "PeerRefused", "PeerUnavailable"]

TIMEOUT = httpx.Timeout(10.0, connect=3.0)
SESSION_HEADER = "X-Ailedger-Session"
"""Names the session (design.md §5) a request to a peer belongs to."""


class PeerUnavailable(Exception):
    """The peer did not answer in time, or answered with garbage or a server error."""


class PeerRefused(Exception):
    """The peer answered, with an error body: it refused what we asked."""

    def __init__(self, status: int, code: str, message: str) -> None:
        self.status = status
        self.code = code
        self.message = message
        super().__init__(f"{status} {code}: {message}")


class PeerClient:
    def __init__(
        self,
        node_id: str,
        listen_url: str,
        *,
        timeout: httpx.Timeout = TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.http = httpx.AsyncClient(
            timeout=timeout,
            transport=transport,
            headers={"X-Ailedger-Node": node_id, "X-Ailedger-Listen": listen_url},
            limits=httpx.Limits(max_connections=256, max_keepalive_connections=64),
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    async def call(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        params: Sequence[tuple[str, str]] = (),
        timeout: float | None = None,
        session: str | None = None,
    ) -> Any:
        """The peer's JSON answer; ``PeerRefused`` or ``PeerUnavailable`` if none.
        ``session``: our session token at that peer (every call after the hello)."""
        response = await self._request(method, url, json, params, timeout, session)
        try:
            body = response.json()
        except ValueError as exc:
            raise PeerUnavailable(f"{method} {url}: answer is not JSON") from exc
        _check_status(method, url, response, body)
        return body

    async def fetch(
        self,
        url: str,
        *,
        params: Sequence[tuple[str, str]] = (),
        timeout: float | None = None,
        session: str | None = None,
    ) -> bytes:
        """The raw body of a successful ``GET`` (for the caller to parse elsewhere)."""
        response = await self._request("GET", url, None, params, timeout, session)
        if response.is_success:
            return response.content
        try:
            body = response.json()
        except ValueError:
            body = None
        _check_status("GET", url, response, body)
        raise PeerUnavailable(f"GET {url}: {response.status_code}")

    async def _request(
        self,
        method: str,
        url: str,
        json: Any,
        params: Sequence[tuple[str, str]],
        timeout: float | None,
        session: str | None,
    ) -> httpx.Response:
        try:
            kwargs: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
            if session is not None:
                kwargs["headers"] = {SESSION_HEADER: session}
            query = httpx.QueryParams(list(params))
            return await self.http.request(method, url, json=json, params=query, **kwargs)
        except httpx.HTTPError as exc:
            raise PeerUnavailable(f"{method} {url}: {type(exc).__name__}: {exc}") from exc


def _check_status(method: str, url: str, response: httpx.Response, body: Any) -> None:
    """Map an error status: a server error is ``PeerUnavailable``, a refusal (4xx, or a
    503 with its error body) is ``PeerRefused``."""
    if response.status_code >= 500 and response.status_code != 503:
        raise PeerUnavailable(f"{method} {url}: {response.status_code}")
    if response.status_code >= 400:
        error = body.get("error", {}) if isinstance(body, dict) else {}
        raise PeerRefused(
            response.status_code, str(error.get("code", "error")), str(error.get("message", ""))
        )
