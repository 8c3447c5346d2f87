"""The JSON views the REST API serves, built from the store and the node's state.

A *record view* is the transaction's own fields plus ``txid``, ``status``, ``block_hash``,
``height``, ``confirmations``, ``revoked`` and ``revoked_by``. Pending records (in the
mempool) have ``status: "pending"`` and null location fields.
"""

from __future__ import annotations

from typing import Any, Literal

from consensus.errors import TxNotFound
from consensus.merkle import inclusion_proof
from consensus.tx import Transaction
from node.store import RecordRow, StoreReader

__all__ = ["confirmed_view", "lineage", "pending_view", "proof", "record_view"]

Direction = Literal["ancestors", "descendants"]
MAX_LINEAGE_NODES = 5_000


def confirmed_view(row: RecordRow, tip_height: int) -> dict[str, Any]:
    return {
        **row.tx.to_json(),
        "txid": row.txid,
        "status": "confirmed",
        "block_hash": row.block_hash,
        "height": row.height,
        "index": row.index,
        "confirmations": tip_height - row.height + 1,
        "revoked": row.revoked_by is not None,
        "revoked_by": row.revoked_by,
    }


def pending_view(tx: Transaction) -> dict[str, Any]:
    return {
        **tx.to_json(),
        "txid": tx.txid,
        "status": "pending",
        "block_hash": None,
        "height": None,
        "index": None,
        "confirmations": 0,
        "revoked": False,
        "revoked_by": None,
    }


def record_view(
    reader: StoreReader, txid: str, tip_height: int, pending: Transaction | None
) -> dict[str, Any]:
    """The record ``txid``, confirmed on the active chain or pending; TxNotFound otherwise."""
    row = reader.record_row(txid)
    if row is not None:
        return confirmed_view(row, tip_height)
    if pending is not None:
        return pending_view(pending)
    raise TxNotFound(f"no transaction {txid}")


def proof(reader: StoreReader, txid: str, tip_height: int) -> dict[str, Any]:
    """An RFC 9162 inclusion proof of a confirmed transaction in its block."""
    location = reader.tx_location(txid)
    block = None if location is None else reader.get_block(location[0])
    if location is None or block is None:
        raise TxNotFound(f"transaction {txid} is not confirmed on the active chain")
    block_hash, height, index = location
    leaves = block.leaves()
    return {
        "txid": txid,
        "block_hash": block_hash,
        "height": height,
        "index": index,
        "tree_size": len(leaves),
        "leaf": leaves[index].hex(),
        "audit_path": [node.hex() for node in inclusion_proof(leaves, index)],
        "header": block.header.raw.hex(),
        "confirmations": tip_height - height + 1,
    }


def lineage(
    reader: StoreReader, root: str, direction: Direction, depth: int, tip_height: int
) -> dict[str, Any]:
    """Breadth-first walk of lineage edges from ``root``, ``depth`` levels at most.

    Edges point from a record to what it derives from (``from`` child, ``to`` parent).
    """
    root_row = reader.record_row(root)
    if root_row is None:
        raise TxNotFound(f"no confirmed record {root}")
    seen = {root}
    edges: list[dict[str, str]] = []
    frontier = [root]
    for _ in range(depth):
        if not frontier or len(seen) >= MAX_LINEAGE_NODES:
            break
        found = reader.parents(frontier) if direction == "ancestors" else reader.children(frontier)
        frontier = []
        for child, parent, role in found:
            edges.append({"from": child, "to": parent, "role": role})
            nxt = parent if direction == "ancestors" else child
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    rows = sorted(reader.record_rows(seen - {root}).values(), key=lambda r: (r.height, r.index))
    nodes = [confirmed_view(row, tip_height) for row in (root_row, *rows)]
    return {"root": root, "direction": direction, "nodes": nodes, "edges": edges}
