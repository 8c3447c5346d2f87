"""Models signed with OpenSSF model-signing, made in the test: a Hugging Face-shaped
directory, a P-256 key pair, and bundles signed offline with ``model_signing.signing``."""

from __future__ import annotations

import json
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from model_signing import hashing, signing

__all__ = ["make_hf_model", "make_signing_key", "sign_model"]

NFD_NAME = "notes/cafe\u0301.md"
"""A file whose name is stored decomposed (as macOS writes it): the ledger names it NFC."""


def make_hf_model(root: Path, seed: bytes = b"weights") -> Path:
    """A model laid out like a Hugging Face repository clone, with a ``.git`` to ignore."""
    root.mkdir(parents=True)
    shards = {f"model-0000{i}-of-00002.safetensors": (seed + bytes([i])) * 40_000 for i in (1, 2)}
    for name, data in shards.items():
        (root / name).write_bytes(data)
    index = {"metadata": {"total_size": sum(map(len, shards.values()))}}
    index["weight_map"] = {f"layer.{i}": name for i, name in enumerate(shards)}
    (root / "model.safetensors.index.json").write_text(json.dumps(index))
    (root / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 64}))
    (root / "tokenizer.json").write_text(json.dumps({"version": "1.0", "seed": seed.hex()}))
    (root / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 2048}))
    (root / "special_tokens_map.json").write_text(json.dumps({"bos_token": "<s>"}))
    (root / "notes").mkdir()
    (root / NFD_NAME).write_text("model card notes\n")
    (root / ".gitattributes").write_text("*.safetensors filter=lfs diff=lfs merge=lfs -text\n")
    git = root / ".git"
    (git / "objects" / "ab").mkdir(parents=True)
    (git / "HEAD").write_text("ref: refs/heads/main\n")
    (git / "objects" / "ab" / "cdef").write_bytes(os.urandom(64))
    return root


def make_signing_key(directory: Path, name: str = "signer") -> tuple[Path, Path]:
    """A P-256 key pair as PEM files: (private, public)."""
    key = ec.generate_private_key(ec.SECP256R1())
    private = directory / f"{name}.key.pem"
    public = directory / f"{name}.pub.pem"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


def sign_model(
    model: Path, private_key: Path, bundle: Path, *, shard_size: int = 0, algorithm: str = "sha256"
) -> Path:
    """Sign ``model`` offline into ``bundle``; sharded when ``shard_size`` is set."""
    config = signing.Config().use_elliptic_key_signer(private_key=private_key)
    if shard_size:
        hashing_config = hashing.Config().use_shard_serialization(shard_size=shard_size)
    else:
        hashing_config = hashing.Config().use_file_serialization(hashing_algorithm=algorithm)
    config.set_hashing_config(hashing_config).sign(model, bundle)
    return bundle
