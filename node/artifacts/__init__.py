"""Client-side encrypted artifact storage (design §12): age keys and streaming
encryption (``age``), deterministic tars of directories and their safe extraction
(``tarball``), blob upload and download (``transfer``), and sealing an artifact for a
record and fetching it back with every digest checked (``vault``)."""

from node.artifacts.age import (
    StorageError,
    WrongIdentity,
    load_identities,
    new_identity_file,
    parse_recipient,
)
from node.artifacts.tarball import UnsafeArchive, extract_tar, write_tar
from node.artifacts.transfer import BadBlob, download, upload
from node.artifacts.vault import SCHEME, FetchResult, Sealed, fetch_artifact, sealed

__all__ = [
    "SCHEME",
    "BadBlob",
    "FetchResult",
    "Sealed",
    "StorageError",
    "UnsafeArchive",
    "WrongIdentity",
    "download",
    "extract_tar",
    "fetch_artifact",
    "load_identities",
    "new_identity_file",
    "parse_recipient",
    "sealed",
    "upload",
    "write_tar",
]
