"""Routes of the explorer page, its files, and the offline ``/docs`` and ``/redoc``.

None of them is part of the REST API, so none appears in the OpenAPI description.
"""

from __future__ import annotations

from html import escape

from fastapi import APIRouter, Request
from starlette.exceptions import HTTPException
from starlette.responses import Response

from node.web.assets import Asset, asset

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

# The page may load and call only its own node (design §10); the browser enforces it.
PAGE_POLICY = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
# Swagger UI and ReDoc also stay on the machine: ReDoc's footer would otherwise fetch its
# logo from a CDN. ReDoc parses the description in a worker it makes from a blob.
DOCS_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "worker-src 'self' blob:; object-src 'none'; base-uri 'none'"
)


def _serve(request: Request, found: Asset, cache_control: str) -> Response:
    headers = {"ETag": found.etag, "Cache-Control": cache_control}
    if request.headers.get("if-none-match") == found.etag:
        return Response(status_code=304, headers=headers)
    return Response(found.body, media_type=found.content_type, headers=headers)


def _file(request: Request, folder: str, name: str, cache_control: str) -> Response:
    found = asset(folder, name)
    if found is None:
        # The app's error handler turns this into the API's 404 body (code "not-found").
        raise HTTPException(404, f"no file {folder}/{name}")
    return _serve(request, found, cache_control)


@router.get("/")
def index(request: Request) -> Response:
    response = _file(request, "static", "index.html", "no-cache")
    response.headers["Content-Security-Policy"] = PAGE_POLICY
    return response


@router.get("/static/{name}")
def static_file(request: Request, name: str) -> Response:
    """The explorer's own files: revalidated on each load, so an upgrade shows at once."""
    return _file(request, "static", name, "no-cache")


@router.get("/vendor/{name}")
def vendor_file(request: Request, name: str) -> Response:
    """Swagger UI and ReDoc: large and unchanging between releases, cached for a day."""
    return _file(request, "vendor", name, "public, max-age=86400")


def _docs_page(title: str, head: str, body: str) -> Response:
    page = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{escape(title)}</title><link rel="icon" href="data:,">{head}</head>'
        f"<body>{body}</body></html>\n"
    )
    return Response(
        page,
        media_type="text/html; charset=utf-8",
        headers={"Content-Security-Policy": DOCS_POLICY},
    )


def _spec_url(request: Request) -> str:
    # Relative to /docs and /redoc, so the pages also work behind a path prefix.
    return escape((request.app.openapi_url or "/openapi.json").lstrip("/"))


@router.get("/docs")
def swagger_ui(request: Request) -> Response:
    return _docs_page(
        f"{request.app.title} API",
        '<link rel="stylesheet" href="vendor/swagger-ui.css">',
        f'<div id="swagger-ui" data-spec="{_spec_url(request)}"></div>'
        '<script src="vendor/swagger-ui-bundle.js"></script>'
        '<script src="static/docs.js"></script>',
    )


@router.get("/redoc")
def redoc(request: Request) -> Response:
    return _docs_page(
        f"{request.app.title} API",
        "",
        f'<div id="redoc" data-spec="{_spec_url(request)}"></div>'
        '<script src="vendor/redoc.standalone.js"></script>'
        '<script src="static/redoc.js"></script>',
    )
