"""SQLite storage for the node: see ``node.store.store`` for the contract."""

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
