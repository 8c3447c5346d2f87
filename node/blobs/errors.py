"""Why a blob is refused, each with a stable code and the HTTP status the API answers::

NodeError
└── BlobError
    ├── BlobMismatch        422 digest-mismatch: the bytes do not hash to the name given
    ├── BlobTooLarge        413 blob-too-large: past the node's largest blob
    ├── BlobQuotaExceeded   507 quota-exceeded: the node's blob quota is full
    ├── BlobsDisabled       507 blobs-disabled: this node keeps no blobs
    ├── BlobIncomplete      400 incomplete-upload: the body ended before Content-Length
    └── UploadsThrottled    429 upload-rate-limited / too-many-uploads
"""

from __future__ import annotations

from node.errors import NodeError

__all__ = [
    "BlobError",
    "BlobIncomplete",
    "BlobMismatch",
    "BlobQuotaExceeded",
    "BlobTooLarge",
    "BlobsDisabled",
    "UploadsThrottled",
]


class BlobError(NodeError):
    status = 400
    code = "bad-blob"


class BlobMismatch(BlobError):
    status = 422
    code = "digest-mismatch"


class BlobTooLarge(BlobError):
    status = 413
    code = "blob-too-large"


class BlobQuotaExceeded(BlobError):
    status = 507
    code = "quota-exceeded"


class BlobsDisabled(BlobError):
    status = 507
    code = "blobs-disabled"


class BlobIncomplete(BlobError):
    status = 400
    code = "incomplete-upload"


class UploadsThrottled(BlobError):
    status = 429
    code = "upload-rate-limited"

    def __init__(self, message: str, *, retry_after: int = 1, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after
