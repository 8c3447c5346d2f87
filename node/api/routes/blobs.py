"""Encrypted artifact blobs (design §12): upload, download (with Range), and the peer paths.

``PUT /v1/blobs/sha256:HEX`` streams the body to disk while hashing it (never the whole
body in memory) and needs no token; ``GET``/``HEAD`` serve what the node holds;
``GET /p2p/blobs/sha256:HEX`` is the same bytes for a replicating peer, and
``POST /p2p/blobs`` is a peer's announcement of blobs it holds.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any, BinaryIO, Literal

from fastapi import APIRouter, Depends, Header, Path, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import ClientDisconnect

from node.api.deps import NodeDep, parse_json
from node.api.errors import ApiError, error_body
from node.api.openapi import ErrorOut
from node.api.routes.p2p import sender
from node.blobs import BlobError, BlobIncomplete, UploadsThrottled

__all__ = ["RANGE_CHUNK", "p2p_router", "parse_range", "router"]

router = APIRouter(prefix="/v1/blobs", tags=["blobs"])
p2p_router = APIRouter(prefix="/p2p/blobs", tags=["p2p"])

RANGE_CHUNK = 1 << 20
IDLE_TIMEOUT_S = 60.0
"""An upload that sends nothing for this long is abandoned (408)."""
MAX_ANNOUNCED = 1000

Digest = Annotated[
    str, Path(pattern=r"^sha256:[0-9a-f]{64}$", description="sha256: and 64 lowercase hex")
]
Peer = Annotated[str, Depends(sender)]
"""The node_id of the peer session a /p2p request names (401 without one)."""


class BlobOut(BaseModel):
    digest: str
    size: int
    status: Literal["stored", "held"]


class AnnounceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    digests: list[Annotated[str, Field(pattern=r"^sha256:[0-9a-f]{64}$")]] = Field(
        max_length=MAX_ANNOUNCED
    )


class AnnounceOut(BaseModel):
    wanted: int


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorOut} for status in statuses}


_BINARY = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
_UPLOAD_BODY = {"requestBody": {"required": True, "content": _BINARY}}


@router.put(
    "/{digest}",
    response_model=BlobOut,
    status_code=201,
    openapi_extra=_UPLOAD_BODY,
    responses={
        200: {"model": BlobOut, "description": "already held (the body is not read)"},
        201: {"model": BlobOut, "description": "stored"},
        **_errors(400, 408, 413, 422, 429, 503, 507),
    },
)
async def put_blob(node: NodeDep, request: Request, digest: Digest) -> Response:
    """Store a blob (age ciphertext) under its SHA-256. The node hashes the body as it
    arrives and keeps it only if it matches (422 digest-mismatch otherwise); 507 when
    the node's blob quota has no room, or it keeps no blobs."""
    client = request.client.host if request.client else "unknown"
    declared = request.headers.get("content-length", "")
    length = int(declared) if declared.isdecimal() else None  # None: chunked
    try:
        created = await node.blobs.upload(digest, _body(request), length=length, client=client)
    except UploadsThrottled as exc:
        headers = {"Retry-After": str(exc.retry_after)}
        return JSONResponse(error_body(exc.code, exc.message), exc.status, headers=headers)
    except BlobError as exc:
        # The client may still be sending: close the connection rather than read on.
        return JSONResponse(
            error_body(exc.code, exc.message), exc.status, headers={"Connection": "close"}
        )
    size = node.blobs.held().size(digest) or 0
    body = {"digest": digest, "size": size, "status": "stored" if created else "held"}
    return JSONResponse(body, status_code=201 if created else 200)


async def _body(request: Request) -> AsyncIterator[bytes]:
    """The request body as it arrives; a stall or a client gone ends it with an error."""
    stream = request.stream().__aiter__()
    while True:
        try:
            async with asyncio.timeout(IDLE_TIMEOUT_S):  # no task a chunk, as wait_for makes
                chunk = await stream.__anext__()
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise BlobError(
                f"nothing received for {IDLE_TIMEOUT_S:.0f} s", code="upload-timeout", status=408
            ) from None
        except ClientDisconnect:
            raise BlobIncomplete("the client went away before the end of the body") from None
        if chunk:
            yield chunk


_DOWNLOAD = {
    200: {"content": _BINARY, "description": "the whole blob"},
    206: {"content": _BINARY, "description": "the range asked for"},
    **_errors(404, 416, 422, 503),
}


RangeHeader = Annotated[str | None, Header(alias="Range")]


@router.get("/{digest}", responses=_DOWNLOAD)
def get_blob(node: NodeDep, digest: Digest, range_: RangeHeader = None) -> Response:
    """The blob's bytes; one ``Range: bytes=a-b`` (or ``a-``, ``-n``) gives 206."""
    return _serve(node, digest, range_, head=False)


@router.head("/{digest}", responses=_DOWNLOAD)
def head_blob(node: NodeDep, digest: Digest, range_: RangeHeader = None) -> Response:
    """Whether the node holds the blob, and its size (``Content-Length``)."""
    return _serve(node, digest, range_, head=True)


@p2p_router.get(
    "/{digest}", dependencies=[Depends(sender)], responses={**_DOWNLOAD, **_errors(401, 403)}
)
def get_peer_blob(node: NodeDep, digest: Digest, range_: RangeHeader = None) -> Response:
    """A blob for a replicating peer (the same bytes as ``GET /v1/blobs/...``)."""
    return _serve(node, digest, range_, head=False)


_ANNOUNCE_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": AnnounceIn.model_json_schema()}},
    }
}


@p2p_router.post(
    "",
    response_model=AnnounceOut,
    openapi_extra=_ANNOUNCE_BODY,
    responses=_errors(401, 403, 413, 422, 503),
)
async def announce(node: NodeDep, peer: Peer, request: Request) -> dict[str, Any]:
    """A peer holds these blobs: those this node wants are fetched from it now."""
    try:
        body = AnnounceIn.model_validate(parse_json(await request.body()))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise ApiError(422, "bad-request", f"{where}: {first['msg']}") from exc
    return {"wanted": node.blobs.announced(peer, body.digests)}


def _serve(node: Any, digest: str, range_: str | None, *, head: bool) -> Response:
    opened = node.blobs.held().open_blob(digest) if node.blobs.enabled else None
    if opened is None:
        raise ApiError(404, "not-found", f"this node holds no blob {digest}")
    handle, size = opened
    headers = {"Accept-Ranges": "bytes", "ETag": f'"{digest}"'}
    try:
        span = parse_range(range_, size)
    except ValueError:
        handle.close()
        return JSONResponse(
            error_body("range-not-satisfiable", f"the blob holds {size} bytes"),
            416,
            headers={"Content-Range": f"bytes */{size}"},
        )
    start, end = span or (0, size - 1)
    length = max(0, end - start + 1)
    status = 206 if span is not None else 200
    if span is not None:
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    headers["Content-Length"] = str(length)
    if head:
        handle.close()
        return Response(status_code=status, headers=headers, media_type="application/octet-stream")
    return StreamingResponse(
        _read(handle, start, length), status, headers, media_type="application/octet-stream"
    )


def _read(handle: BinaryIO, start: int, length: int) -> Iterator[bytes]:
    with handle:
        handle.seek(start)
        while length > 0:
            chunk = handle.read(min(RANGE_CHUNK, length))
            if not chunk:
                return
            length -= len(chunk)
            yield chunk


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The first and last byte of a single ``bytes=`` range, or ``None`` for the whole
    blob (no header, another unit, several ranges, or a header that does not parse: RFC
    9110 lets a server ignore those). ``ValueError`` when the range is unsatisfiable."""
    if header is None:
        return None
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash or not (first.isdecimal() or last.isdecimal()):
        return None
    if not first.isdecimal():  # a suffix: the last n bytes
        if not last.isdecimal() or int(last) == 0 or size == 0:
            raise ValueError("empty suffix range")
        return max(0, size - int(last)), size - 1
    if last and not last.isdecimal():
        return None
    start = int(first)
    end = int(last) if last else size - 1
    if start >= size:
        raise ValueError("range starts past the end")
    if end < start:
        return None
    return start, min(end, size - 1)
