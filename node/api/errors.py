"""One place that turns every error into the API's error body and HTTP status.

    {"error": {"code": "<kebab-case>", "message": "<human text>"}}   (+ "txid" when known)

Reject codes keep their meaning everywhere: 409 for conflicts with what is already
recorded, 413 for sizes, 422 for malformed input, 400 for other rule violations.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from consensus.errors import NotFoundError, RejectError
from node.api.openapi import allowed_methods
from node.errors import NodeError
from node.store import StoreError

__all__ = ["ApiError", "error_body", "install_error_handlers", "reject_status"]

log = logging.getLogger(__name__)

_CONFLICT = frozenset({"duplicate", "duplicate-nonce", "already-revoked"})
_TOO_LARGE = frozenset({"tx-too-large", "body-too-large", "bad-blk-size"})
_MALFORMED = frozenset(
    {"bad-tx-schema", "bad-json", "malformed-json", "bad-request", "bad-block", "bad-header"}
)


class ApiError(Exception):
    """An error raised by a route: status, stable code, message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        self.status = status
        self.code = code
        self.message = message
        super().__init__(message)


def reject_status(code: str) -> int:
    if code in _CONFLICT:
        return 409
    if code in _TOO_LARGE:
        return 413
    if code in _MALFORMED:
        return 422
    return 400


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


def _json(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse(error_body(code, message, **extra), status_code=status)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api(_: Request, exc: ApiError) -> JSONResponse:
        return _json(exc.status, exc.code, exc.message)

    @app.exception_handler(RejectError)
    async def _reject(_: Request, exc: RejectError) -> JSONResponse:
        extra = {"txid": exc.txid} if exc.txid else {}
        return _json(reject_status(exc.code), exc.code, exc.message, **extra)

    @app.exception_handler(NotFoundError)
    async def _not_found(_: Request, exc: NotFoundError) -> JSONResponse:
        return _json(404, "not-found", str(exc) or "not found")

    @app.exception_handler(NodeError)
    async def _node(_: Request, exc: NodeError) -> JSONResponse:
        return _json(exc.status, exc.code, exc.message)

    @app.exception_handler(StoreError)
    async def _store(_: Request, exc: StoreError) -> JSONResponse:
        log.error("storage failure: %s", exc)
        return _json(503, "storage-error", "the node's storage failed; try again later")

    @app.exception_handler(ClientDisconnect)
    async def _gone(request: Request, _: ClientDisconnect) -> JSONResponse:
        # The client (or a peer that crashed) left before sending its whole body: nobody
        # reads the answer, and it is no error of the node's (no traceback, no ERROR line).
        log.debug("client disconnected during %s %s", request.method, request.url.path)
        return _json(400, "client-disconnected", "the client left before sending its request")

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return _json(422, "bad-request", f"{where}: {first.get('msg', 'invalid request')}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and "parsing the body" in str(exc.detail):
            # FastAPI's answer to a body that is not JSON, where a route has a model
            return _json(422, "malformed-json", "request body is not valid JSON")
        code = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        response = _json(exc.status_code, code, str(exc.detail))
        if exc.status_code == 405:  # RFC 9110: a 405 lists the methods the path takes
            given = (exc.headers or {}).get("Allow", "")
            methods = {m.strip() for m in given.split(",") if m.strip()}
            methods |= set(allowed_methods(request.app, request.url.path))
            response.headers["Allow"] = ", ".join(sorted(methods))
        return response
