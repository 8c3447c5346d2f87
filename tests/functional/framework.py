"""A functional test framework that runs real ``ailedger node`` processes.

Like Bitcoin Core's ``test_framework``: ``TestNode`` starts a node as a subprocess on its
own port and data directory, waits for ``/healthz``, names itself in every failure
(``[node 2] ...``), can be killed with SIGKILL and restarted on the same data, and always
ends its process. The helpers ``wait_until``, ``sync_blocks`` and ``connect_nodes`` wait
for what a test expects, with a deadline and a message that says what did not happen.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from consensus.tx import Transaction

__all__ = ["ADMIN_TOKEN", "NodeFailure", "TestNode", "free_port", "sync_blocks", "wait_until"]

ADMIN_TOKEN = "functional-admin-token"
START_TIMEOUT = 30.0


class NodeFailure(AssertionError):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(predicate: Callable[[], bool], *, timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what or predicate}")
        time.sleep(0.05)


class TestNode:
    __test__ = False  # not a pytest test class

    def __init__(
        self,
        index: int,
        root: Path,
        *,
        network: str = "regtest",
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.index = index
        self.network = network
        self.data_dir = root / f"node{index}"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.data_dir / "node.log"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = list(args)
        # The node's temporary files (the check workers' fork-server socket) stay in the
        # test's directory: a node killed with SIGKILL cannot remove them.
        self.tmp_dir = root / f"node{index}-tmp"
        self.tmp_dir.mkdir(exist_ok=True)
        self.env = {"TMPDIR": str(self.tmp_dir), **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None
        self.http = httpx.Client(
            base_url=self.url, timeout=30.0, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        )

    def __repr__(self) -> str:
        return f"[node {self.index}]"

    # --- process -------------------------------------------------------------------------

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "node",
            "node",
            "--network",
            self.network,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            "--admin-token",
            ADMIN_TOKEN,
            *self.args,
        ]

    def start(self, *, wait: bool = True) -> None:
        if self.process is not None and self.process.poll() is None:
            raise NodeFailure(f"{self} is already running")
        env = {k: v for k, v in os.environ.items() if not k.startswith("AILEDGER_")}
        env.update(self.env)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        def ready() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise NodeFailure(
                    f"{self} exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            try:
                return self.http.get("/healthz", timeout=1.0).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, timeout=timeout, what=f"{self} to answer /healthz")

    def kill9(self) -> None:
        """SIGKILL the node's whole process group (server and miner workers)."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM and wait; SIGKILL if it does not stop in time."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill9()
                raise NodeFailure(f"{self} did not stop within {timeout} s") from None
        self.process = None

    def close(self) -> None:
        try:
            if self.process is not None and self.process.poll() is None:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        finally:
            self.process = None
            self.http.close()

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(f"{self} {line}" for line in text[-lines:])

    # --- API -----------------------------------------------------------------------------

    def call(
        self, method: str, path: str, *, expect: int | Iterable[int] = 200, **kwargs: Any
    ) -> Any:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise NodeFailure(f"{self} {method} {path}: {exc!r}") from exc
        allowed = {expect} if isinstance(expect, int) else set(expect)
        if response.status_code not in allowed:
            raise NodeFailure(f"{self} {method} {path} -> {response.status_code}: {response.text}")
        return response.json()

    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = self.call("GET", "/v1/status")
        return status

    def mine(self, blocks: int = 1) -> list[str]:
        hashes: list[str] = self.call("POST", "/v1/admin/mine", json={"blocks": blocks})["hashes"]
        return hashes

    def submit(self, tx: Transaction) -> str:
        txid: str = self.call("POST", "/v1/transactions", json=tx.to_json(), expect=202)["txid"]
        return txid

    def tx(self, txid: str) -> dict[str, Any]:
        view: dict[str, Any] = self.call("GET", f"/v1/transactions/{txid}")
        return view


def sync_blocks(nodes: Sequence[TestNode], *, timeout: float = 60.0) -> None:
    """Wait until every node has the same best block."""

    def same_tip() -> bool:
        return len({n.status()["best_hash"] for n in nodes}) == 1

    wait_until(same_tip, timeout=timeout, what=f"{list(nodes)} to agree on the tip")
