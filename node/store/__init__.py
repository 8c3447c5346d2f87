"""SQLite storage for the node (design §7).

    Store          the writer: header tree, blocks, active chain and record indexes,
                   mempool, peers, meta; ``transaction()`` makes a reorg atomic
    StoreReader    the same read queries on a read-only connection, for other threads
    StoreError     a storage failure or mismatch (never a consensus rejection)
    RecordRow      a confirmed record and where it sits on the active chain

Modules: ``schema`` (migrations, connection settings), ``db`` (the locked connection),
``records`` (what a record adds to the indexes), ``queries`` (reads), ``store`` (writes).
"""

from node.store.db import StoreError
from node.store.queries import Edge, StoreReader
from node.store.records import RecordRow
from node.store.schema import SCHEMA_VERSION
from node.store.store import PEER_FIELDS, Store

__all__ = [
    "PEER_FIELDS",
    "SCHEMA_VERSION",
    "Edge",
    "RecordRow",
    "Store",
    "StoreError",
    "StoreReader",
]
