"""Figures 14-21: encrypted artifact storage (design §12) through real nodes.

- Upload and download MB/s of a blob through a node (``PUT``/``GET /v1/blobs/...``:
  hashed while written, fsynced) against a plain HTTP file server on the same loopback
  with the same uvicorn stack, in the same run, with the same client code paths.
- Peak memory (resident set) of ``ailedger register ... --store`` and ``ailedger fetch``
  on a 1 GiB file, and of the node's server process while it stores and serves it.
- The time a blob takes to reach a second node after its record is confirmed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx

from benchlib.procs import Server, node_server, plain_file_server
from benchlib.report import Figure, Goal
from node.artifacts import download, upload
from node.client import Client

__all__ = ["bench_storage"]

SECTION = "storage"
THROUGHPUT_BYTES = 256 << 20
BIG_BYTES = 1 << 30
SMALL_BYTES = 1 << 20
REPEATS = 2
CHUNK = 1 << 20
NODE_ARGS = ["--blob-quota", "8GiB"]
NODE_ENV = {"AILEDGER_BLOB_UPLOADS_PER_MINUTE": "100000"}


def _random_file(path: Path, size: int) -> str:
    """Write ``size`` random bytes to ``path``; their digest."""
    hasher = hashlib.sha256()
    with path.open("wb") as handle:
        for _ in range(size // CHUNK):
            chunk = os.urandom(CHUNK)
            hasher.update(chunk)
            handle.write(chunk)
    return "sha256:" + hasher.hexdigest()


def _timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def _plain_put(url: str, path: Path) -> None:
    def body() -> Iterator[bytes]:
        with path.open("rb") as handle:
            while chunk := handle.read(CHUNK):
                yield chunk

    headers = {"Content-Length": str(path.stat().st_size)}
    httpx.put(url, content=body(), headers=headers, timeout=120).raise_for_status()


def _plain_get(url: str, target: Path) -> None:
    with httpx.stream("GET", url, timeout=120) as response, target.open("wb") as handle:
        response.raise_for_status()
        for chunk in response.iter_bytes(CHUNK):
            handle.write(chunk)


def _step(run: Callable[[], object], server: Server) -> tuple[float, float]:
    """Wall seconds of ``run``, and the CPU seconds ``server`` spent meanwhile."""
    cpu = server.cpu_seconds() or 0.0
    seconds = _timed(run)
    return seconds, (server.cpu_seconds() or 0.0) - cpu


def _one_round(
    workdir: Path, run: int, node: Server, plain: Server
) -> dict[str, tuple[float, float]]:
    """(seconds, server CPU seconds) to move one fresh random blob each way, through the
    node and plainly."""
    source, target = workdir / f"blob{run}.bin", workdir / "copy.bin"
    digest = _random_file(source, THROUGHPUT_BYTES)
    plain_url = f"{plain.url}/files/f{run}"
    try:
        return {
            "plain up": _step(lambda: _plain_put(plain_url, source), plain),
            "node up": _step(lambda: upload(node.url, digest, source), node),
            "plain down": _step(lambda: _plain_get(plain_url, target), plain),
            "node down": _step(lambda: download(node.url, digest, target), node),
        }
    finally:
        source.unlink(missing_ok=True)
        target.unlink(missing_ok=True)


def _throughput(workdir: Path, node: Server, plain: Server) -> list[Figure]:
    """Best of ``REPEATS`` uploads and downloads each way, node and plain, interleaved."""
    mib = THROUGHPUT_BYTES / (1 << 20)
    best = {"node up": 0.0, "plain up": 0.0, "node down": 0.0, "plain down": 0.0}
    cpu = {name: float("inf") for name in best}
    for run in range(REPEATS):
        for name, (seconds, used) in _one_round(workdir, run, node, plain).items():
            best[name] = max(best[name], mib / seconds)
            cpu[name] = min(cpu[name], used)
    figures = []
    for key, way in (("14", "up"), ("15", "down")):
        ratio = best[f"node {way}"] / best[f"plain {way}"]
        detail = (
            f"node {best[f'node {way}']:.0f} MiB/s, plain HTTP {best[f'plain {way}']:.0f} MiB/s "
            f"({mib:.0f} MiB, best of {REPEATS}); server CPU {cpu[f'node {way}']:.2f} s vs "
            f"{cpu[f'plain {way}']:.2f} s (the node hashes, and on upload fsyncs; the fetch "
            "client hashes too)"
        )
        name = f"blob {'upload' if way == 'up' else 'download'} via node / plain HTTP"
        figures.append(Figure(key, SECTION, name, ratio, "x", Goal(">=", 0.7), detail))
    return figures


def _peak_rss_mb(pid: int) -> float:
    """The high-water mark of a live process's resident set, in MB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


def _reset_peak(pid: int) -> None:
    """Start the high-water mark over (Linux ``clear_refs`` 5); best effort."""
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")


def _cli_peak(*args: str) -> tuple[str, float]:
    """Run ``ailedger ARGS``: its stdout and its peak resident set in MB (the kernel's
    accounting of the waited child, ``wait4``)."""
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(
            [sys.executable, "-m", "node", *args], stdout=subprocess.PIPE, stderr=errors
        )
        out = process.stdout.read() if process.stdout is not None else b""
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            errors.seek(0)
            raise RuntimeError(f"ailedger {args[0]} failed: {errors.read().decode()[-300:]}")
    return out.decode().strip(), usage.ru_maxrss / 1024


def _memory_and_replication(workdir: Path, a: Server, b: Server) -> list[Figure]:
    keys = workdir / "keys"
    keys.mkdir()
    signing, identity = keys / "me.pem", keys / "me.age"
    _cli_peak("keygen", "--out", str(signing))
    recipient, _ = _cli_peak("keygen", "--age", "--out", str(identity))
    big = workdir / "big.bin"
    _random_file(big, BIG_BYTES)
    _reset_peak(a.process.pid)
    base_a = _peak_rss_mb(a.process.pid)
    txid, client_store = _cli_peak(
        "register", "dataset", str(big), "--name", "big", "--key", str(signing),
        "--node", a.url, "--encrypt-to", recipient, "--store",
    )  # fmt: skip
    node_store = _peak_rss_mb(a.process.pid)
    reach_big = _reach_after_confirmation(a, b, txid)
    _reset_peak(a.process.pid)
    out = workdir / "fetched.bin"
    _, client_fetch = _cli_peak(
        "fetch", txid, "--identity", str(identity), "--out", str(out), "--node", a.url
    )
    node_fetch = _peak_rss_mb(a.process.pid)
    same = out.stat().st_size == big.stat().st_size
    big.unlink()
    out.unlink()
    goal = Goal("<=", 100)
    note = f"1 GiB file; the node's server process (its resident set before: {base_a:.0f} MB)"
    return [
        Figure("16", SECTION, "peak RSS: register --store, 1 GiB (client)", client_store, "MB",
               goal, "ailedger register dataset ... --encrypt-to R --store"),
        Figure("17", SECTION, "peak RSS: node storing a 1 GiB upload", node_store, "MB",
               goal, note),
        Figure("18", SECTION, "peak RSS: fetch, 1 GiB (client)", client_fetch, "MB", goal,
               f"ailedger fetch; output identical in size: {same}"),
        Figure("19", SECTION, "peak RSS: node serving a 1 GiB blob", node_fetch, "MB", goal,
               note),
        Figure("20", SECTION, "1 GiB blob reaches a 2nd node after confirmation",
               reach_big * 1000, "ms", None, "from the mine call's answer to HEAD 200 on B"),
        *_small_reach(workdir, a, b),
    ]  # fmt: skip


def _reach_after_confirmation(a: Server, b: Server, txid: str) -> float:
    """Mine the record on A; seconds until B holds its blob."""
    with a.client() as client_a, b.client() as client_b:
        view = client_a.get(f"/v1/records/{txid}").json()
        digest = view["payload"]["metadata"]["storage"]["ciphertext_digest"]
        client_a.post("/v1/admin/mine", json={"blocks": 1}).raise_for_status()
        start = time.perf_counter()
        deadline = start + 600
        while client_b.head(f"/v1/blobs/{digest}").status_code != 200:
            if time.perf_counter() > deadline:
                raise RuntimeError(f"{digest} did not reach the second node in 600 s")
            time.sleep(0.02)
        return time.perf_counter() - start


def _small_reach(workdir: Path, a: Server, b: Server) -> list[Figure]:
    """The same for a 1 MiB blob stored through the Python client: median of 3."""
    from consensus.keys import private_key_from_pem  # noqa: PLC0415

    key = private_key_from_pem((workdir / "keys" / "me.pem").read_bytes())
    samples = []
    for run in range(3):
        source = workdir / f"small{run}.bin"
        digest = _random_file(source, SMALL_BYTES)
        upload(a.url, digest, source)
        storage = {
            "scheme": "age-v1",
            "ciphertext_digest": digest,
            "ciphertext_size": SMALL_BYTES,
            "recipients": ["age1bench"],
        }
        with Client(a.url) as client:
            txid = client.register_dataset(
                source, key=key, name=f"small{run}", metadata={"storage": storage}
            )
        samples.append(_reach_after_confirmation(a, b, txid) * 1000)
    samples.sort()
    detail = f"runs {', '.join(f'{s:.0f}' for s in samples)} ms (replication wakes on the block)"
    return [
        Figure("21", SECTION, "1 MiB blob reaches a 2nd node after confirmation",
               samples[1], "ms", None, detail),
    ]  # fmt: skip


def bench_storage(workdir: Path) -> list[Figure]:
    with (
        node_server(workdir, "a", args=NODE_ARGS, env=NODE_ENV) as a,
        plain_file_server(workdir) as plain,
    ):
        figures = _throughput(workdir, a, plain)
        with node_server(workdir, "b", args=[*NODE_ARGS, "--peer", a.url], env=NODE_ENV) as b:
            _wait_peers(b)
            figures += _memory_and_replication(workdir, a, b)
    return figures


def _wait_peers(server: Server) -> None:
    deadline = time.monotonic() + 30
    with server.client() as client:
        while client.get("/v1/status").json().get("peers", 0) < 1:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{server.name} did not connect to its peer")
            time.sleep(0.1)
