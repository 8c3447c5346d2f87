"""The command line against a real node: keygen, register, record, lineage, verify."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.functional.conftest import NodeFactory
from tests.functional.framework import TestNode


def ailedger(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "node", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def ok(*args: str) -> str:
    done = ailedger(*args)
    assert done.returncode == 0, f"ailedger {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout.strip()


def test_register_then_verify_and_detect_tampering(make_node: NodeFactory, tmp_path: Path) -> None:
    node: TestNode = make_node()
    other: TestNode = make_node(args=["--peer", node.url])
    key = tmp_path / "me.pem"
    ok("keygen", "--out", str(key))
    data = tmp_path / "corpus"
    data.mkdir()
    (data / "a.txt").write_text("alpha\n")
    (data / "b.txt").write_text("beta\n")
    model = tmp_path / "model.bin"
    model.write_bytes(b"\x00weights\x01" * 1000)

    dataset_txid = ok(
        "register", "dataset", str(data), "--name", "corpus", "--key", str(key), "--node", node.url
    )
    model_txid = ok(
        "register",
        "model",
        str(model),
        "--name",
        "net",
        "--input",
        f"{dataset_txid}:training_data",
        "--metric",
        "accuracy=0.9",
        "--key",
        str(key),
        "--node",
        node.url,
    )
    node.mine(2)

    verified = ailedger("verify", str(model), "--node", node.url, "--node", other.url)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert model_txid in verified.stdout
    assert ailedger("verify", str(data), "--node", node.url).returncode == 0

    lineage = ok("lineage", model_txid, "--node", node.url)
    assert dataset_txid[:12] in lineage

    model.write_bytes(b"\x00weights\x01" * 999 + b"tampered")
    tampered = ailedger("verify", str(model), "--node", node.url)
    assert tampered.returncode == 1, tampered.stdout + tampered.stderr
    (data / "b.txt").write_text("beta, edited\n")
    assert ailedger("verify", str(data), "--node", node.url).returncode == 1

    ok(
        "record",
        "revocation",
        "--subject",
        model_txid,
        "--reason",
        "leaked",
        "--key",
        str(key),
        "--node",
        node.url,
    )
    node.mine(1)
    model.write_bytes(b"\x00weights\x01" * 1000)
    revoked = ailedger("verify", str(model), "--node", node.url)
    assert revoked.returncode == 1, revoked.stdout + revoked.stderr
    assert "revoked" in (revoked.stdout + revoked.stderr).lower()
