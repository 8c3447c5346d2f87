"""Artifact digests: one file, or a whole directory through a manifest.

A file's digest is ``"sha256:" + hex(SHA-256(contents))``, read in 1 MiB chunks.

A directory's digest is the SHA-256 of the RFC 8785 canonical JSON of its *manifest*::

    {"version": 1, "files": {"<relative posix path>": "sha256:<hex>", ...}}

over every regular file below it. The paths are relative to the directory (its own name
is not part of the digest), use ``/`` on every OS and are NFC-normalised Unicode, so the
digest is the same on every machine that holds the same tree, and it binds names to
contents: renaming, adding, removing or editing a file changes it. Empty directories
carry no data and do not count.

Symbolic links below the directory are never followed: a link's target is not part of
the tree, and following one could pull in any file on the machine (or loop forever).
By default a link is refused with an error naming it; ``skip_symlinks=True`` leaves it
out and reports it through ``on_skip``. Sockets, FIFOs and devices are always refused.
The path you name yourself may be a link: naming it is consent to follow it.

``exclude`` names entries at the top of the directory to leave out (files or whole
subdirectories), compared after NFC normalisation: a model signed with OpenSSF
model-signing leaves out ``.git``, ``.gitattributes``, ``.github`` and ``.gitignore``
(``node.interop.model_signing``), and so does its digest here.
"""

from __future__ import annotations

import hashlib
import os
import stat
import unicodedata
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from consensus.encoding import canonical_json
from consensus.tx import is_digest

__all__ = [
    "CHUNK_SIZE",
    "MANIFEST_VERSION",
    "Artifact",
    "ArtifactError",
    "artifact_size",
    "digest_artifact",
    "digest_directory",
    "digest_file",
    "digest_path",
    "is_digest",
]

CHUNK_SIZE = 1 << 20
MANIFEST_VERSION = 1
_O_NOFOLLOW: int = getattr(os, "O_NOFOLLOW", 0)

Progress = Callable[[int], object]
"""Called with the number of bytes just hashed, once per chunk."""


class ArtifactError(Exception):
    """A path that cannot be hashed: missing, unreadable, a link or a special file."""


@dataclass(frozen=True, slots=True)
class Artifact:
    """What hashing a path found: its digest and what ``register`` puts in metadata."""

    path: Path
    digest: str
    is_directory: bool
    file_count: int
    total_size: int
    manifest: dict[str, Any] | None
    """The directory's manifest (the exact object hashed), ``None`` for a file."""


@dataclass(frozen=True, slots=True)
class _Entry:
    name: str
    path: Path
    size: int


def digest_file(path: str | os.PathLike[str], progress: Progress | None = None) -> str:
    """``"sha256:<hex>"`` of the file at ``path``, streamed in ``CHUNK_SIZE`` chunks."""
    return _hash_file(Path(path), progress, follow=True)


def _hash_file(target: Path, progress: Progress | None, *, follow: bool) -> str:
    hasher = hashlib.sha256()
    # Inside a directory a file is opened with O_NOFOLLOW: a file swapped for a link
    # between the scan and the read is refused rather than followed.
    flags = os.O_RDONLY | getattr(os, "O_BINARY", 0) | (0 if follow else _O_NOFOLLOW)
    try:
        with os.fdopen(os.open(target, flags), "rb") as handle:
            while chunk := handle.read(CHUNK_SIZE):
                hasher.update(chunk)
                if progress is not None:
                    progress(len(chunk))
    except FileNotFoundError as exc:
        raise ArtifactError(f"{target}: no such file") from exc
    except IsADirectoryError as exc:
        raise ArtifactError(f"{target}: is a directory, not a file") from exc
    except OSError as exc:
        if not follow and target.is_symlink():
            raise ArtifactError(f"{target}: became a symbolic link while hashing") from exc
        raise ArtifactError(f"{target}: cannot read: {exc.strerror or exc}") from exc
    return "sha256:" + hasher.hexdigest()


def digest_directory(
    path: str | os.PathLike[str],
    progress: Progress | None = None,
    *,
    skip_symlinks: bool = False,
    on_skip: Callable[[str], object] | None = None,
    exclude: Collection[str] = (),
) -> tuple[str, dict[str, Any]]:
    """The directory's digest and its manifest (the object that was hashed)."""
    artifact = _digest_tree(Path(path), progress, skip_symlinks, on_skip, exclude)
    assert artifact.manifest is not None
    return artifact.digest, artifact.manifest


def digest_path(
    path: str | os.PathLike[str],
    progress: Progress | None = None,
    *,
    skip_symlinks: bool = False,
    on_skip: Callable[[str], object] | None = None,
) -> str:
    """The digest of a file or of a directory (see the module docstring)."""
    return digest_artifact(path, progress, skip_symlinks=skip_symlinks, on_skip=on_skip).digest


def digest_artifact(
    path: str | os.PathLike[str],
    progress: Progress | None = None,
    *,
    skip_symlinks: bool = False,
    on_skip: Callable[[str], object] | None = None,
    exclude: Collection[str] = (),
) -> Artifact:
    """Hash a file or a directory and say how many files and bytes it holds."""
    target = Path(path)
    st = _stat(target, follow=True)
    if stat.S_ISDIR(st.st_mode):
        return _digest_tree(target, progress, skip_symlinks, on_skip, exclude)
    if not stat.S_ISREG(st.st_mode):
        raise ArtifactError(f"{target}: not a regular file or directory")
    digest = digest_file(target, progress)
    return Artifact(target, digest, False, 1, st.st_size, None)


def artifact_size(
    path: str | os.PathLike[str], *, skip_symlinks: bool = False, exclude: Collection[str] = ()
) -> int:
    """Bytes that hashing ``path`` will read (the total for a progress bar)."""
    target = Path(path)
    st = _stat(target, follow=True)
    if stat.S_ISDIR(st.st_mode):
        return sum(entry.size for entry in _scan(target, skip_symlinks, None, exclude))
    return st.st_size


def _digest_tree(
    root: Path,
    progress: Progress | None,
    skip_symlinks: bool,
    on_skip: Callable[[str], object] | None,
    exclude: Collection[str] = (),
) -> Artifact:
    if not stat.S_ISDIR(_stat(root, follow=True).st_mode):
        raise ArtifactError(f"{root}: not a directory")
    entries = _scan(root, skip_symlinks, on_skip, exclude)
    files = {entry.name: _hash_file(entry.path, progress, follow=False) for entry in entries}
    manifest: dict[str, Any] = {"version": MANIFEST_VERSION, "files": files}
    digest = "sha256:" + hashlib.sha256(canonical_json(manifest)).hexdigest()
    total = sum(entry.size for entry in entries)
    return Artifact(root, digest, True, len(entries), total, manifest)


def _scan(
    root: Path,
    skip_symlinks: bool,
    on_skip: Callable[[str], object] | None,
    exclude: Collection[str] = (),
) -> list[_Entry]:
    """Every regular file below ``root``, sorted by manifest name; links never followed;
    the top-level entries named in ``exclude`` left out."""
    left_out = {unicodedata.normalize("NFC", name) for name in exclude}
    found: dict[str, _Entry] = {}
    pending = [root]
    while pending:
        directory = pending.pop()
        try:
            with os.scandir(directory) as listing:
                children = list(listing)
        except OSError as exc:
            raise ArtifactError(f"{directory}: cannot list: {exc.strerror or exc}") from exc
        for child in children:
            path = Path(child.path)
            name = _manifest_name(root, path)
            if directory == root and name in left_out:
                continue
            if child.is_symlink():
                if not skip_symlinks:
                    raise ArtifactError(
                        f"{path}: is a symbolic link; links are not followed "
                        "(remove it, or skip links: --skip-symlinks, skip_symlinks=True)"
                    )
                if on_skip is not None:
                    on_skip(name)
                continue
            mode = _stat(path, follow=False).st_mode
            if stat.S_ISDIR(mode):
                pending.append(path)
            elif stat.S_ISREG(mode):
                if name in found:
                    raise ArtifactError(
                        f"{path}: its name collides with {found[name].path} after Unicode "
                        "normalisation; rename one of them"
                    )
                found[name] = _Entry(name, path, _stat(path, follow=False).st_size)
            else:
                raise ArtifactError(f"{path}: not a regular file, directory or link")
    return [found[name] for name in sorted(found)]


def _manifest_name(root: Path, path: Path) -> str:
    parts = path.relative_to(root).parts
    try:
        for part in parts:
            part.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ArtifactError(f"{path}: file name is not valid UTF-8") from exc
    # macOS stores names decomposed (NFD), Linux as given: normalise so both agree.
    return unicodedata.normalize("NFC", "/".join(parts))


def _stat(path: Path, *, follow: bool) -> os.stat_result:
    try:
        return path.stat() if follow else path.lstat()
    except FileNotFoundError as exc:
        raise ArtifactError(f"{path}: no such file or directory") from exc
    except OSError as exc:
        raise ArtifactError(f"{path}: cannot access: {exc.strerror or exc}") from exc
