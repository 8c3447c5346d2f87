"""What the browser tests share: a regtest node with an example lineage, and Chromium.

Playwright drives Debian's ``chromium`` (``executable_path``): Playwright's own browser
download needs the internet. ``scripts/test`` installs the package when it is missing.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node.client import Client
from tests.functional.framework import ADMIN_TOKEN, TestNode, wait_until

__all__ = ["CHROMIUM_CANDIDATES", "Lineage", "chromium_path", "make_lineage"]

CHROMIUM_CANDIDATES = (
    "/usr/lib/chromium/chromium",
    "/usr/bin/chromium",
    "/usr/bin/chromium-browser",
)


def chromium_path() -> str | None:
    """The chromium to drive: ``AILEDGER_CHROMIUM``, else Debian's, else none."""
    for candidate in (os.environ.get("AILEDGER_CHROMIUM"), *CHROMIUM_CANDIDATES):
        if candidate and (Path(candidate).is_file() or shutil.which(candidate)):
            return candidate
    return None


@dataclass(frozen=True)
class Lineage:
    dataset: str
    model: str
    inference: str
    revoked: str
    revocation: str
    dataset_digest: str
    model_block: str
    model_height: int


def _file(files: Path, name: str, content: bytes) -> Path:
    path = files / name
    path.write_bytes(content)
    return path


def make_lineage(node: TestNode, files: Path) -> Lineage:
    """dataset -> model -> inference, and a second model that is revoked; all mined."""
    key = Ed25519PrivateKey.generate()
    corpus = _file(files, "corpus.txt", b"the quick brown fox jumps over the lazy dog\n")
    with Client(node.url, admin_token=ADMIN_TOKEN) as client:
        dataset = client.register_dataset(corpus, key=key, name="example-corpus")
        client.mine(1)
        model = client.register_model(
            _file(files, "model.bin", b"weights v1"),
            key=key,
            name="example-model",
            inputs=[(dataset, "training_data")],
            framework="numpy",
        )
        revoked = client.register_model(
            _file(files, "old.bin", b"weights v0"),
            key=key,
            name="withdrawn-model",
            inputs=[(dataset, "training_data")],
        )
        client.mine(1)
        inference = client.record_inference(
            model, "sha256:" + "11" * 32, "sha256:" + "22" * 32, key=key
        )
        revocation = client.revoke(revoked, key=key, reason="trained on the wrong split")
        client.mine(2)
        view = client.record(model)
        wait_until(lambda: client.record(inference)["status"] == "confirmed", what="confirmed")
    return Lineage(
        dataset=dataset,
        model=model,
        inference=inference,
        revoked=revoked,
        revocation=revocation,
        dataset_digest="sha256:" + hashlib.sha256(corpus.read_bytes()).hexdigest(),
        model_block=view["block_hash"],
        model_height=view["height"],
    )
