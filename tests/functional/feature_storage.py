"""Encrypted artifact storage with real nodes (design §12): store on one node, replicate
to the others, lose the first, fetch and decrypt from the rest; bad bytes and wrong keys
are caught, and an interrupted upload leaves nothing behind."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from node.manifest import digest_directory
from tests.functional.conftest import NodeFactory
from tests.functional.framework import TestNode, sync_blocks, wait_until

QUOTA = ["--blob-quota", "64MiB"]


def ailedger(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "node", *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def ok(*args: str) -> str:
    done = ailedger(*args)
    assert done.returncode == 0, f"ailedger {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout.strip()


def holds(node: TestNode, digest: str) -> bool:
    return node.http.head(f"/v1/blobs/{digest}").status_code == 200


def storage_of(node: TestNode, txid: str) -> dict[str, object]:
    storage: dict[str, object] = node.call("GET", f"/v1/records/{txid}")["payload"]["metadata"][
        "storage"
    ]
    return storage


def keys(tmp_path: Path) -> tuple[Path, Path, str]:
    signing, identity = tmp_path / "me.pem", tmp_path / "me.age"
    ok("keygen", "--out", str(signing))
    recipient = ok("keygen", "--age", "--out", str(identity))
    assert recipient.startswith("age1")
    assert identity.read_text().splitlines()[-1].startswith("AGE-SECRET-KEY-1")
    assert identity.stat().st_mode & 0o777 == 0o600
    return signing, identity, recipient


def test_a_stored_dataset_outlives_its_node(make_node: NodeFactory, tmp_path: Path) -> None:
    a = make_node(args=QUOTA)
    b = make_node(args=[*QUOTA, "--peer", a.url])
    c = make_node(args=[*QUOTA, "--peer", a.url, "--peer", b.url])
    signing, identity, recipient = keys(tmp_path)
    data = tmp_path / "train.bin"
    data.write_bytes(bytes(range(256)) * 8000 + b"the end")

    txid = ok(
        "register", "dataset", str(data), "--name", "train", "--key", str(signing),
        "--node", a.url, "--encrypt-to", recipient, "--store",
    )  # fmt: skip
    storage = storage_of_pending(a, txid)
    cipher = str(storage["ciphertext_digest"])
    assert storage["scheme"] == "age-v1" and storage["recipients"] == [recipient]
    assert not holds(b, cipher)  # not before the record is confirmed
    a.mine(1)
    sync_blocks([a, b, c])
    wait_until(lambda: holds(b, cipher) and holds(c, cipher), what="B and C to replicate")
    assert a.call("GET", f"/v1/records/{txid}")["payload"]["size"] == data.stat().st_size
    a.kill9()

    out = tmp_path / "fetched" / "train.bin"
    out.parent.mkdir()
    ok("fetch", txid, "--identity", str(identity), "--out", str(out), "--node", b.url)
    assert out.read_bytes() == data.read_bytes()

    # A wrong identity: a clear error, and nothing at or beside --out.
    stranger = tmp_path / "stranger.age"
    ok("keygen", "--age", "--out", str(stranger))
    elsewhere = tmp_path / "nothing" / "train.bin"
    elsewhere.parent.mkdir()
    refused = ailedger(
        "fetch", txid, "--identity", str(stranger), "--out", str(elsewhere), "--node", b.url
    )
    assert refused.returncode == 1
    assert "not one of the artifact's recipients" in refused.stderr
    assert list(elsewhere.parent.iterdir()) == []

    # B's copy is damaged on disk: the fetch falls back to C and says B was not trusted.
    blob = b.data_dir / "blobs" / "sha256" / cipher[7:9] / cipher[7:]
    damaged = bytearray(blob.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    blob.write_bytes(bytes(damaged))
    again = tmp_path / "again.bin"
    fetched = ailedger(
        "fetch", txid, "--identity", str(identity), "--out", str(again),
        "--node", b.url, "--node", c.url,
    )  # fmt: skip
    assert fetched.returncode == 0, fetched.stderr
    assert "not trusted for this blob" in fetched.stderr and b.url in fetched.stderr
    assert f"fetched from {c.url}" in fetched.stderr
    assert again.read_bytes() == data.read_bytes()

    # A new node that replicates from B gets the wrong bytes: it discourages B, and finds
    # the blob with C (learned through B) instead.
    d = make_node(args=[*QUOTA, "--peer", b.url])

    def b_discouraged() -> bool:
        peers = d.call("GET", "/v1/peers")["peers"]
        return any(p["url"] == b.url and p.get("discouraged") for p in peers)

    wait_until(b_discouraged, timeout=60, what="D to discourage B for its wrong blob")
    reasons = [p.get("reason") or "" for p in d.call("GET", "/v1/peers")["peers"]]
    assert any("wrong blob" in reason for reason in reasons), reasons
    wait_until(lambda: holds(d, cipher), timeout=120, what="D to replicate from C")

    # With only the damaged copy to go on, nothing appears.
    lost = tmp_path / "lost" / "x.bin"
    lost.parent.mkdir()
    only_b = ailedger(
        "fetch", txid, "--identity", str(identity), "--out", str(lost), "--node", b.url
    )
    assert only_b.returncode == 1 and "intact" in only_b.stderr
    assert list(lost.parent.iterdir()) == []


def storage_of_pending(node: TestNode, txid: str) -> dict[str, object]:
    view = node.call("GET", f"/v1/records/{txid}")
    storage: dict[str, object] = view["payload"]["metadata"]["storage"]
    return storage


def test_a_directory_round_trip_keeps_its_manifest(make_node: NodeFactory, tmp_path: Path) -> None:
    node = make_node(args=QUOTA)
    signing, identity, recipient = keys(tmp_path)
    tree = tmp_path / "corpus"
    (tree / "nested" / "deeper").mkdir(parents=True)
    (tree / "a.txt").write_text("alpha\n")
    (tree / "nested" / "b.csv").write_text("x,y\n1,2\n")
    (tree / "nested" / "deeper" / "weights.bin").write_bytes(bytes(range(256)) * 100)
    (tree / "run.sh").write_text("#!/bin/sh\n")
    (tree / "run.sh").chmod(0o755)
    txid = ok(
        "register", "model", str(tree), "--name", "m", "--key", str(signing),
        "--node", node.url, "--encrypt-to", recipient, "--store",
    )  # fmt: skip
    node.mine(1)
    out = tmp_path / "restored"
    ok("fetch", txid, "--identity", str(identity), "--out", str(out), "--node", node.url)
    assert digest_directory(out) == digest_directory(tree)
    assert node.call("GET", f"/v1/records/{txid}")["payload"]["digest"] == digest_directory(tree)[0]
    assert (out / "run.sh").stat().st_mode & 0o100


def test_an_inference_stores_its_output(make_node: NodeFactory, tmp_path: Path) -> None:
    node = make_node(args=QUOTA)
    signing, identity, recipient = keys(tmp_path)
    model = tmp_path / "model.bin"
    model.write_bytes(b"weights")
    model_txid = ok("register", "model", str(model), "--name", "m", "--key", str(signing),
                    "--node", node.url)  # fmt: skip
    node.mine(1)
    question, answer = tmp_path / "in.txt", tmp_path / "out.txt"
    question.write_text("is this a cat?\n")
    answer.write_text("yes, a cat\n")
    txid = ok(
        "record", "inference", "--model", model_txid, "--input", str(question),
        "--output", str(answer), "--key", str(signing), "--node", node.url,
        "--encrypt-to", recipient, "--store",
    )  # fmt: skip
    node.mine(1)
    out = tmp_path / "prediction.txt"
    ok("fetch", txid, "--identity", str(identity), "--out", str(out), "--node", node.url)
    assert out.read_text() == "yes, a cat\n"


def test_kill9_mid_upload_leaves_no_blob(make_node: NodeFactory, tmp_path: Path) -> None:
    node = make_node(args=QUOTA)
    digest = "sha256:" + "ab" * 32  # never completes, so the name does not matter
    sent = threading.Event()

    def slow_body() -> Iterator[bytes]:
        yield b"x" * (1 << 20)
        sent.set()
        time.sleep(30)
        yield b"y"

    def upload() -> None:
        with contextlib.suppress(httpx.HTTPError):  # the node is killed under it
            httpx.put(
                f"{node.url}/v1/blobs/{digest}",
                content=slow_body(),
                headers={"Content-Length": str((1 << 20) + 1)},
                timeout=60,
            )

    uploader = threading.Thread(target=upload, daemon=True)
    uploader.start()
    assert sent.wait(30)
    partial = node.data_dir / "blobs" / "tmp"
    wait_until(lambda: any(partial.iterdir()), what="the upload to reach the node's disk")
    assert node.http.get(f"/v1/blobs/{digest}").status_code == 404  # never partly visible
    node.kill9()
    node.start()
    assert node.http.get(f"/v1/blobs/{digest}").status_code == 404
    assert node.http.head(f"/v1/blobs/{digest}").status_code == 404
    assert list(partial.iterdir()) == []
    assert not (node.data_dir / "blobs" / "sha256" / "ab").exists()
