"""Client-side storage pieces: deterministic tars, safe extraction, sealing with age."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from node.artifacts import (
    StorageError,
    UnsafeArchive,
    WrongIdentity,
    extract_tar,
    load_identities,
    new_identity_file,
    sealed,
    write_tar,
)
from node.artifacts.age import decrypt_file
from node.artifacts.vault import stored_artifact
from node.manifest import ArtifactError, digest_directory, digest_file


def make_tree(root: Path) -> Path:
    (root / "sub" / "deep").mkdir(parents=True)
    (root / "b.txt").write_text("bee\n")
    (root / "a.txt").write_text("ay\n")
    (root / "sub" / "deep" / "c.bin").write_bytes(bytes(range(256)) * 50)
    return root


def packed(root: Path) -> tuple[bytes, str]:
    out = io.BytesIO()
    digest, _, _ = write_tar(root, out)
    return out.getvalue(), digest


def test_the_tar_is_deterministic_and_its_digest_is_the_manifest(tmp_path: Path) -> None:
    first = make_tree(tmp_path / "one")
    second = make_tree(tmp_path / "two")
    os.utime(second / "a.txt", (1, 1))  # times and creation order do not matter
    data_one, digest_one = packed(first)
    data_two, digest_two = packed(second)
    assert data_one == data_two
    assert digest_one == digest_two == digest_directory(first)[0]
    with tarfile.open(fileobj=io.BytesIO(data_one)) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == ["a.txt", "b.txt", "sub/deep/c.bin"]
    assert {(m.mtime, m.uid, m.gid, m.uname) for m in members} == {(0, 0, 0, "")}


def test_a_link_in_the_tree_is_refused_or_skipped(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "t")
    (tree / "link").symlink_to(tree / "a.txt")
    with pytest.raises(ArtifactError, match="symbolic link"):
        write_tar(tree, io.BytesIO())
    _, manifest, _ = write_tar(tree, io.BytesIO(), skip_symlinks=True)
    assert "link" not in manifest["files"]


def test_extraction_round_trips(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "t")
    archive = tmp_path / "t.tar"
    archive.write_bytes(packed(tree)[0])
    (tmp_path / "out").mkdir()
    assert extract_tar(archive, tmp_path / "out") == 3
    assert digest_directory(tmp_path / "out") == digest_directory(tree)


def hostile(tmp_path: Path, member: tarfile.TarInfo, data: bytes = b"") -> Path:
    archive = tmp_path / "hostile.tar"
    with tarfile.open(archive, "w") as tar:
        member.size = len(data) if member.isfile() else 0
        tar.addfile(member, io.BytesIO(data) if member.isfile() else None)
    return archive


def _link(name: str, target: str, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


@pytest.mark.parametrize(
    "member",
    [
        tarfile.TarInfo("../escaped.txt"),
        tarfile.TarInfo("sub/../../escaped.txt"),
        tarfile.TarInfo("/etc/escaped.txt"),
        _link("innocent", "/etc/passwd", tarfile.SYMTYPE),
        _link("hard", "../outside", tarfile.LNKTYPE),
    ],
    ids=["dotdot", "nested-dotdot", "absolute", "symlink", "hardlink"],
)
def test_hostile_archives_are_refused(tmp_path: Path, member: tarfile.TarInfo) -> None:
    archive = hostile(tmp_path, member, b"gotcha")
    target = tmp_path / "inside" / "out"
    target.mkdir(parents=True)
    with pytest.raises(UnsafeArchive, match="refused"):
        extract_tar(archive, target)
    assert not (tmp_path / "inside" / "escaped.txt").exists()
    assert not (tmp_path / "escaped.txt").exists()
    assert list(target.iterdir()) == []


def test_sealing_a_file_is_plain_age_over_its_bytes(tmp_path: Path) -> None:
    text, recipient = new_identity_file()
    (tmp_path / "me.age").write_bytes(text)
    source = tmp_path / "data.bin"
    source.write_bytes(os.urandom(100_000))
    with sealed(source, [recipient]) as seal:
        assert seal.artifact.digest == digest_file(source)
        assert seal.storage["ciphertext_digest"] == digest_file(seal.ciphertext)
        assert seal.storage["ciphertext_size"] == seal.ciphertext.stat().st_size
        assert seal.ciphertext.read_bytes().startswith(b"age-encryption.org/v1\n")
        decrypt_file(seal.ciphertext, tmp_path / "back", load_identities(tmp_path / "me.age"))
        other_text, _ = new_identity_file()
        (tmp_path / "other.age").write_bytes(other_text)
        with pytest.raises(WrongIdentity):
            decrypt_file(seal.ciphertext, tmp_path / "no", load_identities(tmp_path / "other.age"))
        kept = seal.ciphertext
    assert (tmp_path / "back").read_bytes() == source.read_bytes()
    assert not kept.exists()  # the ciphertext lives only as long as the context


def test_bad_keys_and_recipients_are_clear_errors(tmp_path: Path) -> None:
    (tmp_path / "junk.age").write_text("# nothing here\n")
    with pytest.raises(StorageError, match="no AGE-SECRET-KEY"):
        load_identities(tmp_path / "junk.age")
    with pytest.raises(StorageError, match="cannot read identity"):
        load_identities(tmp_path / "missing.age")
    with (
        pytest.raises(StorageError, match="not an age X25519 recipient"),
        sealed(tmp_path, ["age1nonsense"]),
    ):
        pass


def test_a_record_without_storage_is_refused() -> None:
    view = {"txid": "t", "kind": "dataset", "payload": {"digest": "sha256:" + "0" * 64}}
    with pytest.raises(StorageError, match="stores no artifact"):
        stored_artifact(view)
