"""Encrypted artifact storage on the nodes (design §12): content-addressed blobs of age
ciphertext, kept within a quota, replicated from peers for every confirmed record's
``metadata.storage``, and deleted when nothing references them.

    BlobStore     the files on disk (``store``)
    Blobs         a node's service: uploads, references, replication, clean-up (``service``)
    Replicator    fetches referenced blobs from peers through a ``PeerLink`` (``replication``)
    storage_ref   the blob a record stores its artifact in (``refs``)
"""

from node.blobs.errors import (
    BlobError,
    BlobIncomplete,
    BlobMismatch,
    BlobQuotaExceeded,
    BlobsDisabled,
    BlobTooLarge,
    UploadsThrottled,
)
from node.blobs.refs import SCHEME, STORAGE_MARK, References, StorageRef, storage_ref
from node.blobs.replication import PeerLink, Replicator
from node.blobs.service import BlobLimits, Blobs
from node.blobs.store import BlobStore

__all__ = [
    "SCHEME",
    "STORAGE_MARK",
    "BlobError",
    "BlobIncomplete",
    "BlobLimits",
    "BlobMismatch",
    "BlobQuotaExceeded",
    "BlobStore",
    "BlobTooLarge",
    "Blobs",
    "BlobsDisabled",
    "PeerLink",
    "References",
    "Replicator",
    "StorageRef",
    "UploadsThrottled",
    "storage_ref",
]
