"""Moving ciphertext to and from a node's blob store (design §12), streamed both ways.

``upload`` sends a file with ``PUT /v1/blobs/sha256:HEX`` (skipped when the node holds
it already: ``HEAD`` first); ``download`` writes ``GET /v1/blobs/sha256:HEX`` to a file
while hashing it and says whether the bytes are the ones named. Neither holds more than
one chunk of the file in memory.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import httpx

from node.client import ApiError, NodeUnavailable
from node.manifest import CHUNK_SIZE

__all__ = ["TIMEOUT", "BadBlob", "download", "upload"]

Progress = Callable[[int], object]
TIMEOUT = httpx.Timeout(60.0, connect=5.0)


class BadBlob(Exception):
    """A node served bytes that are not the blob asked for."""


def upload(
    base_url: str,
    digest: str,
    path: Path,
    progress: Progress | None = None,
    *,
    transport: httpx.BaseTransport | None = None,
) -> str:
    """Store the file at ``path`` as blob ``digest`` on the node: "stored" or "held"."""
    url = f"{base_url.rstrip('/')}/v1/blobs/{digest}"
    size = path.stat().st_size
    with httpx.Client(timeout=TIMEOUT, transport=transport) as http:
        try:
            if http.head(url).status_code == 200:
                if progress is not None:
                    progress(size)
                return "held"
            response = http.put(
                url,
                content=_read(path, progress),
                headers={"Content-Length": str(size), "Content-Type": "application/octet-stream"},
            )
        except httpx.HTTPError as exc:
            raise NodeUnavailable(None, "node-unavailable", f"{base_url}: {exc}") from exc
    if response.status_code >= 400:
        raise _refusal(response, base_url)
    status = response.json().get("status") if response.content else None
    return str(status or "stored")


def _read(path: Path, progress: Progress | None) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_SIZE):
            if progress is not None:
                progress(len(chunk))
            yield chunk


def download(
    base_url: str,
    digest: str,
    target: Path,
    progress: Callable[[int | None], Progress | None] | None = None,
    *,
    transport: httpx.BaseTransport | None = None,
) -> None:
    """Write blob ``digest`` from the node to ``target``. ``ApiError`` if the node does
    not serve it (404 and the like), ``NodeUnavailable`` if it cannot be reached, and
    ``BadBlob`` if what it sent hashes to something else. ``progress`` is called with
    the size once the answer starts, and returns a callback for the bytes received."""
    url = f"{base_url.rstrip('/')}/v1/blobs/{digest}"
    hasher = hashlib.sha256()
    try:
        with (
            httpx.Client(timeout=TIMEOUT, transport=transport) as http,
            http.stream("GET", url) as response,
        ):
            if response.status_code >= 400:
                response.read()
                raise _refusal(response, base_url)
            length = response.headers.get("content-length", "")
            size = int(length) if length.isdecimal() else None
            advance = None if progress is None else progress(size)
            with target.open("wb") as handle, ThreadPoolExecutor(2) as workers:
                # Hash and write on two threads while the next chunk arrives (both let go
                # of the GIL); one chunk in flight, so memory stays at two chunks.
                writing: list[Future[object]] = []
                for chunk in response.iter_bytes(CHUNK_SIZE):
                    for done in writing:
                        done.result()
                    writing = [
                        workers.submit(hasher.update, chunk),
                        workers.submit(handle.write, chunk),
                    ]
                    if advance is not None:
                        advance(len(chunk))
                for done in writing:
                    done.result()
    except httpx.HTTPError as exc:
        raise NodeUnavailable(None, "node-unavailable", f"{base_url}: {exc}") from exc
    found = "sha256:" + hasher.hexdigest()
    if found != digest:
        raise BadBlob(f"{base_url} served bytes that hash to {found}, not {digest}")


def _refusal(response: httpx.Response, base_url: str) -> ApiError:
    """The node's error body as an ``ApiError`` (any body: a proxy may answer too)."""
    code, message = f"http-{response.status_code}", response.reason_phrase or "error"
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        error = None
    if isinstance(error, dict):
        code = str(error.get("code") or code)
        message = str(error.get("message") or message)
    return ApiError(response.status_code, code, message, url=base_url)
