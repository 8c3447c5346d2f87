"""Server processes for the node benchmarks: a real node, or the hello-world baseline.

Each runs in its own process group on 127.0.0.1 and a fresh port, logs to a file in the
run's temporary directory, and is always ended (SIGTERM, then SIGKILL of the whole group,
which takes the miner workers with it) when its ``with`` block exits.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

__all__ = [
    "ADMIN_TOKEN",
    "LOG_LEVEL",
    "Server",
    "hello_server",
    "node_server",
    "plain_file_server",
    "process_cpu_seconds",
    "tree_rss_bytes",
]

ADMIN_TOKEN = "bench-admin-token"
LOG_LEVEL = "info"
"""The node's default log level; the hello-world server gets the same."""
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
HELLO_APP = Path(__file__).with_name("hello.py")
NODE_ENV = {
    # One benchmark client is one address: the default write limit (200/s) would measure
    # the rate limiter instead of the node.
    "AILEDGER_RATE_LIMIT_PER_S": "1000000000",
    "AILEDGER_RATE_LIMIT_BURST": "1000000000",
    "AILEDGER_MEMPOOL_MAX_COUNT": "50000",
}


class ServerError(RuntimeError):
    pass


@dataclass(frozen=True)
class Server:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text[-lines:])

    def cpu_seconds(self) -> float | None:
        """CPU seconds the server has used so far: its process (all threads) and its
        descendants (a node checks signatures, and mines, in worker processes)."""
        own = process_cpu_seconds(self.process.pid)
        if own is None:
            return None
        return own + sum(filter(None, map(process_cpu_seconds, _descendants(self.process.pid))))

    def client(self, timeout: float = 60.0) -> httpx.Client:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        return httpx.Client(base_url=self.url, timeout=timeout, headers=headers)


def _stat_fields(pid: int | str) -> list[str] | None:
    """The fields of ``/proc/PID/stat`` after the command name (state first), else None."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` so far (from Linux's /proc), else None."""
    fields = _stat_fields(pid)
    if fields is None:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _descendants(pid: int) -> list[int]:
    """The live descendants of ``pid``: a node's check workers are the children of its
    fork server (from Linux's /proc; none elsewhere)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        fields = _stat_fields(entry.name) if entry.name.isdigit() else None
        if fields is not None:
            parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


def tree_rss_bytes(pid: int) -> int | None:
    """Resident bytes of process ``pid`` and all its descendants (Linux's /proc), else None."""
    total = 0
    for each in [pid, *_descendants(pid)]:
        try:
            status = Path(f"/proc/{each}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total or None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _clean_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AILEDGER_")}
    return {**env, **extra}


def _wait_ready(server: Server) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    with httpx.Client(base_url=server.url, timeout=1.0) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise ServerError(
                    f"{server.name} exited with {server.process.returncode}:\n{server.log_tail()}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if client.get("/healthz").status_code == 200:
                    return
            time.sleep(0.05)
    raise ServerError(f"{server.name} did not answer /healthz in {START_TIMEOUT:.0f} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the leader and wait; then SIGKILL whatever is left of its group."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=STOP_TIMEOUT)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=STOP_TIMEOUT)


@contextlib.contextmanager
def _serve(
    name: str, command: Sequence[str], url: str, log_path: Path, env: dict[str, str]
) -> Iterator[Server]:
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            list(command),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=_clean_env(env),
            start_new_session=True,
        )
    server = Server(name, url, process, log_path)
    try:
        _wait_ready(server)
        yield server
    finally:
        _stop(process)


@contextlib.contextmanager
def node_server(
    workdir: Path,
    name: str,
    *,
    network: str = "regtest",
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    reuse: bool = False,
) -> Iterator[Server]:
    """A fresh node (its own data directory under ``workdir``) on a free port; ``env``
    adds ``AILEDGER_*`` settings that have no command-line flag. ``reuse``: the data
    directory may exist already (a node restarted on its store)."""
    data_dir = workdir / name
    data_dir.mkdir(parents=True, exist_ok=reuse)
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "node",
        "node",
        "--network",
        network,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        "--admin-token",
        ADMIN_TOKEN,
        "--log-level",
        LOG_LEVEL,
        *args,
    ]
    with _serve(
        f"node {name}",
        command,
        f"http://127.0.0.1:{port}",
        data_dir / "node.log",
        {**NODE_ENV, **(env or {})},
    ) as server:
        yield server


@contextlib.contextmanager
def plain_file_server(workdir: Path) -> Iterator[Server]:
    """The plain HTTP file server (``plain_files.py``), the storage baseline."""
    port = free_port()
    root = workdir / "plain-files"
    root.mkdir()
    command = [
        sys.executable,
        str(HELLO_APP.with_name("plain_files.py")),
        "--port",
        str(port),
        "--root",
        str(root),
        "--log-level",
        LOG_LEVEL,
    ]
    with _serve(
        "plain files", command, f"http://127.0.0.1:{port}", workdir / "plain.log", {}
    ) as server:
        yield server


@contextlib.contextmanager
def hello_server(workdir: Path) -> Iterator[Server]:
    """The FastAPI hello-world baseline under uvicorn, set up like the node's server."""
    port = free_port()
    command = [sys.executable, str(HELLO_APP), "--port", str(port), "--log-level", LOG_LEVEL]
    with _serve(
        "hello-world", command, f"http://127.0.0.1:{port}", workdir / "hello.log", {}
    ) as server:
        yield server
