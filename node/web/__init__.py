"""The explorer: a web page for people, served by every node at ``/`` (design §10).

Plain HTML, CSS and JavaScript modules under ``static/``, no build step; the page talks
only to its own node's public REST API, through relative URLs. ``/docs`` and ``/redoc``
render the OpenAPI description from the copies of Swagger UI and ReDoc under ``vendor/``
(see ``vendor/VENDORED.md``), so both work offline.
"""

from node.web.routes import router

__all__ = ["router"]
