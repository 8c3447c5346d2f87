"""The explorer's files, read from the package once and served with exact content types.

Only files that ship in ``static/`` and ``vendor/`` can be served (the names are listed
when the table is built, so a path never reaches the file system). Text types carry
``charset=utf-8`` (design §10), and every answer an ETag, so a reload costs a 304.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from importlib import resources

__all__ = ["Asset", "asset"]

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml; charset=utf-8",
    ".png": "image/png",
    ".md": "text/markdown; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
}
FOLDERS = ("static", "vendor")


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    etag: str


@cache
def _names(folder: str) -> frozenset[str]:
    root = resources.files("node.web") / folder
    return frozenset(
        entry.name
        for entry in root.iterdir()
        if entry.is_file() and "." + entry.name.rpartition(".")[2] in CONTENT_TYPES
    )


def asset(folder: str, name: str) -> Asset | None:
    """The file ``folder/name`` of the package, or ``None`` when there is no such file."""
    if folder not in FOLDERS or name not in _names(folder):
        return None
    return _load(folder, name)  # cached per file that exists: a miss never fills the cache


@cache
def _load(folder: str, name: str) -> Asset:
    body = (resources.files("node.web") / folder / name).read_bytes()
    content_type = CONTENT_TYPES["." + name.rpartition(".")[2]]
    return Asset(body, content_type, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')
