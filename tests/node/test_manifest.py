"""Artifact digests: files match hashlib, directory digests bind names to contents."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from node.manifest import (
    CHUNK_SIZE,
    ArtifactError,
    artifact_size,
    digest_artifact,
    digest_directory,
    digest_file,
    digest_path,
    is_digest,
)


def _write(root: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


TREE = {
    "weights/layer1.bin": b"\x00\x01" * 1000,
    "weights/layer2.bin": b"layer two",
    "config.json": b'{"lr": 0.1}',
    "README": b"",
}


def test_file_digest_equals_hashlib(tmp_path: Path) -> None:
    data = os.urandom(CHUNK_SIZE * 2 + 17)
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    expected = "sha256:" + hashlib.sha256(data).hexdigest()
    assert digest_file(path) == expected
    assert digest_path(str(path)) == expected
    assert is_digest(expected)


def test_empty_file_digest(tmp_path: Path) -> None:
    path = tmp_path / "empty"
    path.write_bytes(b"")
    assert digest_file(path) == "sha256:" + hashlib.sha256(b"").hexdigest()


def test_progress_callback_totals_the_file_size(tmp_path: Path) -> None:
    data = os.urandom(CHUNK_SIZE * 3 + 5)
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    calls: list[int] = []
    digest_file(path, progress=calls.append)
    assert sum(calls) == len(data)
    assert len(calls) == 4  # streamed in 1 MiB chunks, never read whole
    assert max(calls) == CHUNK_SIZE


def test_progress_callback_totals_a_directory(tmp_path: Path) -> None:
    _write(tmp_path, TREE)
    calls: list[int] = []
    digest_directory(tmp_path, progress=calls.append)
    total = sum(len(v) for v in TREE.values())
    assert sum(calls) == total == artifact_size(tmp_path)


def test_directory_manifest_is_the_hashed_object(tmp_path: Path) -> None:
    _write(tmp_path, TREE)
    digest, manifest = digest_directory(tmp_path)
    assert manifest["version"] == 1
    assert manifest["files"] == {
        name: "sha256:" + hashlib.sha256(data).hexdigest() for name, data in TREE.items()
    }
    canonical = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    assert digest == "sha256:" + hashlib.sha256(canonical).hexdigest()
    assert digest_path(tmp_path) == digest


def test_directory_digest_ignores_creation_order_and_root_name(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "another-name"
    _write(first, TREE)
    _write(second, dict(reversed(list(TREE.items()))))
    assert digest_directory(first)[0] == digest_directory(second)[0]


def test_directory_digest_changes_on_rename(tmp_path: Path) -> None:
    _write(tmp_path, TREE)
    before = digest_path(tmp_path)
    (tmp_path / "config.json").rename(tmp_path / "config2.json")
    assert digest_path(tmp_path) != before


def test_directory_digest_changes_on_move_between_directories(tmp_path: Path) -> None:
    _write(tmp_path, TREE)
    before = digest_path(tmp_path)
    (tmp_path / "weights/layer2.bin").rename(tmp_path / "layer2.bin")
    assert digest_path(tmp_path) != before


def test_directory_digest_changes_on_content_change(tmp_path: Path) -> None:
    _write(tmp_path, TREE)
    before = digest_path(tmp_path)
    (tmp_path / "weights/layer2.bin").write_bytes(b"layer tw0")
    assert digest_path(tmp_path) != before


def test_directory_digest_changes_on_added_file(tmp_path: Path) -> None:
    _write(tmp_path, TREE)
    before = digest_path(tmp_path)
    (tmp_path / "extra").write_bytes(b"")
    assert digest_path(tmp_path) != before


def test_empty_subdirectories_do_not_count(tmp_path: Path) -> None:
    _write(tmp_path, TREE)
    before = digest_path(tmp_path)
    (tmp_path / "empty" / "nested").mkdir(parents=True)
    assert digest_path(tmp_path) == before


def test_artifact_reports_counts_and_sizes(tmp_path: Path) -> None:
    _write(tmp_path, TREE)
    artifact = digest_artifact(tmp_path)
    assert artifact.is_directory
    assert artifact.file_count == len(TREE)
    assert artifact.total_size == sum(len(v) for v in TREE.values())
    single = digest_artifact(tmp_path / "config.json")
    assert not single.is_directory
    assert (single.file_count, single.total_size, single.manifest) == (1, 11, None)


def test_symlink_in_directory_is_refused_by_default(tmp_path: Path) -> None:
    root = tmp_path / "model"
    _write(root, TREE)
    outside = tmp_path / "secret"
    outside.write_bytes(b"not part of the model")
    (root / "link").symlink_to(outside)
    with pytest.raises(ArtifactError, match="symbolic link"):
        digest_directory(root)


def test_symlink_skipped_when_asked_and_reported(tmp_path: Path) -> None:
    root = tmp_path / "model"
    _write(root, TREE)
    before = digest_path(root)
    (root / "weights" / "loop").symlink_to(root, target_is_directory=True)
    (root / "dangling").symlink_to(tmp_path / "missing")
    skipped: list[str] = []
    digest, manifest = digest_directory(root, skip_symlinks=True, on_skip=skipped.append)
    assert digest == before
    assert sorted(skipped) == ["dangling", "weights/loop"]
    assert "dangling" not in manifest["files"]


def test_named_symlink_is_followed(tmp_path: Path) -> None:
    target = tmp_path / "real.bin"
    target.write_bytes(b"data")
    link = tmp_path / "link.bin"
    link.symlink_to(target)
    assert digest_path(link) == digest_path(target)


def test_missing_path_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(ArtifactError, match="no such file"):
        digest_path(missing)
    with pytest.raises(ArtifactError, match="no such file"):
        digest_file(missing)
    with pytest.raises(ArtifactError, match="no such file"):
        digest_directory(missing)


def test_special_files_are_refused(tmp_path: Path) -> None:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this platform")
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(ArtifactError, match="not a regular file"):
        digest_directory(tmp_path)
    with pytest.raises(ArtifactError, match="not a regular file"):
        digest_path(tmp_path / "pipe")


def test_unicode_names_are_normalised(tmp_path: Path) -> None:
    composed, decomposed = tmp_path / "nfc", tmp_path / "nfd"
    _write(composed, {"caf\u00e9.txt": b"x"})
    _write(decomposed, {"cafe\u0301.txt": b"x"})
    assert digest_path(composed) == digest_path(decomposed)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("sha256:" + "ab" * 32, True),
        ("sha256:" + "AB" * 32, False),
        ("sha256:" + "ab" * 31, False),
        ("md5:" + "ab" * 32, False),
    ],
)
def test_is_digest(value: str, ok: bool) -> None:
    assert is_digest(value) is ok
