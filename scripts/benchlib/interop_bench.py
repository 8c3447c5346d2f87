"""Hashing a model directory: ailedger's manifest digest against ``sha256sum`` and against
OpenSSF model-signing's own hashing, on the same 2 GB of files in the same run.

The directory is shaped like a Hugging Face checkout (sharded safetensors, an index,
config and tokenizer files); it is written under the bench's temporary directory, which
the bench removes. Every side reads it from the page cache after a first warming pass,
so the figures compare hashing, not the disk.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from benchlib.report import Figure, Goal
from benchlib.timing import best_rates
from node.interop.model_signing import MODEL_SIGNING_IGNORED
from node.manifest import digest_directory

__all__ = ["bench_hashing"]

SECTION = "interop"
SHARDS = 8
SHARD_BYTES = 250 * 1000 * 1000
"""8 shards of 250 MB: 2 GB of weights, plus a few small files."""
REPEATS = 3
_BLOCK = 16 << 20


def make_model(root: Path) -> list[Path]:
    """Write the model directory; its files, for ``sha256sum``."""
    root.mkdir()
    block = bytearray(os.urandom(_BLOCK))
    files = []
    for index in range(1, SHARDS + 1):
        path = root / f"model-{index:05d}-of-{SHARDS:05d}.safetensors"
        with path.open("wb") as handle:
            left = SHARD_BYTES
            while left:
                block[:8] = (index * SHARD_BYTES + left).to_bytes(8, "big")  # all distinct
                handle.write(block[: min(left, _BLOCK)])
                left -= min(left, _BLOCK)
        files.append(path)
    small = {
        "config.json": {"model_type": "llama", "hidden_size": 4096},
        "model.safetensors.index.json": {
            "weight_map": {f"l{i}": p.name for i, p in enumerate(files)}
        },
        "tokenizer.json": {"version": "1.0"},
        "tokenizer_config.json": {"model_max_length": 4096},
    }
    for name, value in small.items():
        (root / name).write_text(json.dumps(value))
        files.append(root / name)
    return files


def bench_hashing(workdir: Path) -> list[Figure]:
    """Figures 11 and 12: MB/s hashing the directory, ailedger / sha256sum and / model-signing."""
    from model_signing import hashing  # noqa: PLC0415 - the ailedger[model-signing] extra

    root = workdir / "model"
    files = make_model(root)
    total = sum(p.stat().st_size for p in files)

    def ailedger_run() -> None:
        digest_directory(root, exclude=MODEL_SIGNING_IGNORED)

    def sha256sum_run() -> None:
        subprocess.run(["sha256sum", *map(str, files)], check=True, capture_output=True)

    def model_signing_run() -> None:
        hashing.Config().use_file_serialization().hash(root)

    for run in (ailedger_run, sha256sum_run, model_signing_run):
        run()  # warm the page cache and the imports
    ours, coreutils, theirs = best_rates(
        [ailedger_run, sha256sum_run, model_signing_run], total, REPEATS
    )
    mb = 1e6
    detail = (
        f"ailedger {ours / mb:,.0f} MB/s, sha256sum {coreutils / mb:,.0f} MB/s, "
        f"model-signing {theirs / mb:,.0f} MB/s; {total / 1e9:.2f} GB in {len(files)} files, "
        f"best of {REPEATS}, taking turns"
    )
    return [
        Figure(
            "11",
            SECTION,
            "directory hash MB/s: ailedger / sha256sum",
            ours / coreutils,
            "x",
            Goal(">=", 0.9),
            detail,
        ),
        Figure(
            "12",
            SECTION,
            "directory hash MB/s: ailedger / model-signing",
            ours / theirs,
            "x",
            None,
            detail,
        ),
    ]
