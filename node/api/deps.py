"""Dependencies shared by the routes: the node, a strictly parsed JSON body, admin auth."""

from __future__ import annotations

import hmac
import json
from typing import Annotated, Any

from fastapi import Depends, Header, Request

from node.api.errors import ApiError
from node.daemon import Node
from node.mining import Mining
from node.p2p.service import P2P

__all__ = [
    "AdminDep",
    "MiningDep",
    "NodeDep",
    "P2PDep",
    "get_mining",
    "get_node",
    "get_p2p",
    "parse_json",
    "require_admin",
]


def get_node(request: Request) -> Node:
    node: Node = request.app.state.node
    return node


NodeDep = Annotated[Node, Depends(get_node)]


async def get_p2p(request: Request) -> P2P:
    """The node's p2p layer (async: FastAPI would run a plain function in a thread)."""
    p2p: P2P = request.app.state.p2p
    return p2p


async def get_mining(request: Request) -> Mining:
    mining: Mining = request.app.state.mining
    return mining


P2PDep = Annotated[P2P, Depends(get_p2p)]
MiningDep = Annotated[Mining, Depends(get_mining)]


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        dup = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise ValueError(f"duplicate key {dup!r}")
    return obj


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json(raw: bytes) -> Any:
    """Strict JSON: UTF-8, no duplicate keys (a signature must mean one thing), no NaN."""
    try:
        return json.loads(raw, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constants)
    except (ValueError, RecursionError) as exc:
        raise ApiError(422, "malformed-json", f"request body is not valid JSON: {exc}") from exc


async def json_body(request: Request) -> Any:
    return parse_json(await request.body())


def require_admin(node: NodeDep, authorization: Annotated[str | None, Header()] = None) -> None:
    token = node.settings.admin_token
    if token is None:
        raise ApiError(403, "admin-disabled", "this node has no admin token configured")
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), token.encode()):
        raise ApiError(401, "unauthorized", "admin endpoints need 'Authorization: Bearer <token>'")


AdminDep = Depends(require_admin)
