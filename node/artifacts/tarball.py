"""A directory as one deterministic tar, and its safe extraction.

``write_tar`` packs every regular file below a directory, in manifest order (sorted NFC
names, ``node.manifest``), with fixed metadata (mtime 0, uid/gid 0, no owner names, mode
0644 or 0755 by the owner's execute bit) and no directory or link entries, so the same
tree always gives the same bytes. It hashes each file as it packs it and returns the
manifest digest of exactly what went in.

``extract_tar`` refuses anything that could write outside its target or smuggle in a
link: absolute names, ``..``, links of either kind, devices and FIFOs. It streams (the
archive is read once, front to back) and creates each file with ``O_EXCL``.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tarfile
import unicodedata
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import IO, Any

from consensus.encoding import canonical_json
from node.artifacts.age import StorageError
from node.manifest import CHUNK_SIZE, MANIFEST_VERSION, ArtifactError

__all__ = ["UnsafeArchive", "extract_tar", "write_tar"]

Progress = Callable[[int], object]


class UnsafeArchive(StorageError):
    """An archive member that would leave the target directory, or is not a plain file."""


class _HashingReader:
    """A file read by ``tarfile``, hashed (and reported) on the way."""

    def __init__(self, handle: IO[bytes], progress: Progress | None) -> None:
        self.handle = handle
        self.hasher = hashlib.sha256()
        self.progress = progress

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size)
        self.hasher.update(data)
        if self.progress is not None and data:
            self.progress(len(data))
        return data


def write_tar(
    root: Path, out: IO[bytes], progress: Progress | None = None, *, skip_symlinks: bool = False
) -> tuple[str, dict[str, Any], int]:
    """Pack the regular files below ``root`` into ``out``: their manifest digest, the
    manifest, and their total size. A link is refused (``ArtifactError``), as hashing
    refuses it, or with ``skip_symlinks`` left out."""
    files: dict[str, str] = {}
    total = 0
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for name, path in _files(root, skip_symlinks):
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
            with os.fdopen(fd, "rb") as handle:
                st = os.fstat(handle.fileno())
                info = tarfile.TarInfo(name)
                info.size = st.st_size
                info.mode = 0o755 if st.st_mode & stat.S_IXUSR else 0o644
                info.mtime = 0
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                reader = _HashingReader(handle, progress)
                tar.addfile(info, reader)
                files[name] = "sha256:" + reader.hasher.hexdigest()
                total += st.st_size
    manifest: dict[str, Any] = {"version": MANIFEST_VERSION, "files": files}
    return "sha256:" + hashlib.sha256(canonical_json(manifest)).hexdigest(), manifest, total


def _files(root: Path, skip_symlinks: bool) -> list[tuple[str, Path]]:
    """(manifest name, path) of every regular file below ``root``, sorted by name."""
    found: dict[str, Path] = {}
    pending = [root]
    while pending:
        directory = pending.pop()
        with os.scandir(directory) as listing:
            for entry in listing:
                path = Path(entry.path)
                if entry.is_symlink():
                    if skip_symlinks:
                        continue
                    raise ArtifactError(f"{path}: is a symbolic link; links are not stored")
                if entry.is_dir(follow_symlinks=False):
                    pending.append(path)
                elif entry.is_file(follow_symlinks=False):
                    name = unicodedata.normalize("NFC", path.relative_to(root).as_posix())
                    found[name] = path
                else:
                    raise ArtifactError(f"{path}: not a regular file, directory or link")
    return sorted(found.items())


def extract_tar(archive: Path, target: Path) -> int:
    """Unpack ``archive`` into the empty directory ``target``; the number of files.
    ``UnsafeArchive`` (with part of the tree written: the caller removes ``target``)."""
    count = 0
    try:
        with tarfile.open(archive, mode="r|") as tar:
            for member in tar:
                destination = target / _safe_name(member)
                if member.isdir():
                    destination.mkdir(parents=True, exist_ok=True)
                    continue
                source = tar.extractfile(member)
                if source is None:
                    raise UnsafeArchive(f"archive member {member.name!r} has no content")
                destination.parent.mkdir(parents=True, exist_ok=True)
                mode = 0o755 if member.mode & stat.S_IXUSR else 0o644
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
                with os.fdopen(os.open(destination, flags, mode), "wb") as handle:
                    while chunk := source.read(CHUNK_SIZE):
                        handle.write(chunk)
                count += 1
    except FileExistsError as exc:
        raise UnsafeArchive(f"archive holds {exc.filename} twice") from exc
    except tarfile.TarError as exc:
        raise StorageError(f"the decrypted artifact is not a valid tar archive: {exc}") from exc
    except OSError as exc:
        raise UnsafeArchive(f"cannot unpack the archive: {exc.strerror or exc}") from exc
    return count


def _safe_name(member: tarfile.TarInfo) -> PurePosixPath:
    """The member's relative path; ``UnsafeArchive`` unless it is a plain file or
    directory whose name stays inside the target."""
    name = member.name
    if not (member.isfile() or member.isdir()):
        kind = "link" if member.issym() or member.islnk() else "special file"
        raise UnsafeArchive(f"refused archive member {name!r}: a {kind}")
    path = PurePosixPath(name)
    if not name or path.is_absolute() or name.startswith(("/", "\\")) or "\\" in name:
        raise UnsafeArchive(f"refused archive member {name!r}: an absolute or odd path")
    if any(part in ("..", "") for part in name.split("/")[:-1]) or ".." in path.parts:
        raise UnsafeArchive(f"refused archive member {name!r}: it leaves the output directory")
    if "\x00" in name or path == PurePosixPath("."):
        raise UnsafeArchive(f"refused archive member {name!r}")
    return path
