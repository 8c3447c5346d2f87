"""Drive a docker compose project of ailedger nodes from the host.

The compose counterpart of ``tests/functional/framework.py``: ``Cluster`` wraps one
compose project (its own project name, so runs never collide) and ``ServiceNode`` one
container of it, found by service and replica number (``compose ps -q SERVICE``), never
by container name. A node's API is reached from the host through its published port
(``docker port``, looked up each time: a restart or a reconnect publishes it anew);
a node without one (the ``peer`` followers, a node cut off the network) is reached
with ``docker exec`` and the image's own Python, with the admin token taken from the
container's environment (or the secret file it names). Failures name the node (``[node3] ...``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import httpx

from consensus.tx import Transaction

__all__ = [
    "ROOT",
    "Cluster",
    "NodeFailure",
    "ServiceNode",
    "compose_command",
    "wait_for_block",
    "wait_same_tip",
    "wait_until",
]

ROOT = Path(__file__).resolve().parents[2]
API_PORT = 8000

# Runs inside a container: one API call to the node there, answer as JSON on stdout.
EXEC_CALL = """
import json, os, sys, urllib.error, urllib.request
method, path = sys.argv[1], sys.argv[2]
body = sys.stdin.buffer.read() or None
headers = {"Content-Type": "application/json"}
token = os.environ.get("AILEDGER_ADMIN_TOKEN")
if not token and os.environ.get("AILEDGER_ADMIN_TOKEN_FILE"):
    token = open(os.environ["AILEDGER_ADMIN_TOKEN_FILE"]).read().strip()
if token:
    headers["Authorization"] = "Bearer " + token
url = "http://127.0.0.1:%s%s" % (os.environ.get("AILEDGER_PORT", "8000"), path)
request = urllib.request.Request(url, data=body, method=method, headers=headers)
try:
    with urllib.request.urlopen(request, timeout=60) as answer:
        status, text = answer.status, answer.read().decode()
except urllib.error.HTTPError as exc:
    status, text = exc.code, exc.read().decode()
print(json.dumps({"status": status, "body": text}))
"""


class NodeFailure(AssertionError):
    pass


class Unreachable(NodeFailure):
    """The node did not answer (down, starting, cut off): retry, or fail the test."""


@cache
def compose_command() -> tuple[str, ...]:
    """``docker compose`` (v2 plugin) when it answers, else ``docker-compose`` (v1)."""
    override = os.environ.get("AILEDGER_COMPOSE")
    if override:
        return tuple(override.split())
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    if probe.returncode == 0:
        return ("docker", "compose")
    if shutil.which("docker-compose"):
        return ("docker-compose",)
    raise RuntimeError("neither `docker compose` nor `docker-compose` is installed")


def wait_until(
    predicate: Callable[[], bool], *, timeout: float, what: str, interval: float = 1.0
) -> float:
    """Poll ``predicate`` until it holds; return the seconds it took. A node that does
    not answer counts as "not yet"."""
    start = time.monotonic()
    last_error: Exception | None = None
    while True:
        try:
            if predicate():
                return time.monotonic() - start
        except Unreachable as exc:
            last_error = exc
        if time.monotonic() - start > timeout:
            detail = f" (last error: {last_error})" if last_error else ""
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}{detail}")
        time.sleep(interval)


def run(
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 300,
    stdin: bytes | None = None,
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        list(args), env=env, input=stdin, capture_output=True, timeout=timeout, check=False
    )


class Cluster:
    """One compose project: ``docker-compose.yml`` plus optional override files."""

    def __init__(
        self,
        project: str,
        *,
        overrides: Iterable[Path] = (),
        env: Mapping[str, str] | None = None,
        admin_token: str,
    ) -> None:
        self.project = project
        self.files = [ROOT / "docker-compose.yml", *overrides]
        self.admin_token = admin_token
        self.env = {**os.environ, **(env or {}), "AILEDGER_ADMIN_TOKEN": admin_token}
        # Ephemeral host ports (empty value: "127.0.0.1::8000"), so runs never collide.
        for n in (1, 2, 3):
            self.env[f"AILEDGER_NODE{n}_PORT"] = ""
        self.env["AILEDGER_BIND"] = "127.0.0.1"  # whatever a .env file says
        self._nodes: dict[tuple[str, int], ServiceNode] = {}

    def __repr__(self) -> str:
        return f"<cluster {self.project}>"

    def compose(self, *args: str, timeout: float = 300, check: bool = True) -> str:
        files = [arg for path in self.files for arg in ("-f", str(path))]
        cmd = [*compose_command(), "-p", self.project, *files, *args]
        done = run(cmd, env=self.env, timeout=timeout)
        if check and done.returncode != 0:
            raise NodeFailure(
                f"{' '.join(cmd)} failed ({done.returncode}):\n"
                f"{done.stderr.decode(errors='replace')[-3000:]}"
            )
        return done.stdout.decode(errors="replace")

    # --- lifecycle -----------------------------------------------------------------------

    def up(self, *services: str, scale: Mapping[str, int] | None = None) -> None:
        """``up -d`` without building (``scripts/compose-e2e`` builds the image once)."""
        scaling = [arg for svc, n in (scale or {}).items() for arg in ("--scale", f"{svc}={n}")]
        self.compose("up", "-d", "--no-build", *scaling, *services, timeout=600)

    def down(self) -> None:
        """Remove containers, networks and volumes; never raises (used in finalizers)."""
        for node in self._nodes.values():
            node.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.compose(
                "down", "-v", "--remove-orphans", "--timeout", "5", timeout=300, check=False
            )

    def logs(self, tail: int = 80) -> str:
        return self.compose("logs", "--no-color", f"--tail={tail}", check=False)

    # --- nodes ---------------------------------------------------------------------------

    def container_ids(self, service: str) -> list[str]:
        """Containers of ``service`` (running or stopped), ordered by replica number."""
        ids = self.compose("ps", "-a", "-q", service).split()
        if not ids:
            return []
        numbers = run(
            [
                "docker",
                "inspect",
                "-f",
                '{{index .Config.Labels "com.docker.compose.container-number"}}',
                *ids,
            ]
        )
        order = [int(n) for n in numbers.stdout.decode().split()]
        return [cid for _, cid in sorted(zip(order, ids, strict=True))]

    def node(self, service: str, replica: int = 1) -> ServiceNode:
        key = (service, replica)
        if key not in self._nodes:
            self._nodes[key] = ServiceNode(self, service, replica)
        return self._nodes[key]

    def replicas(self, service: str) -> list[ServiceNode]:
        return [self.node(service, i + 1) for i in range(len(self.container_ids(service)))]

    def wait_healthy(self, nodes: Sequence[ServiceNode], *, timeout: float = 240) -> float:
        """Wait for the engine's healthcheck to report every node healthy."""
        return wait_until(
            lambda: all(n.health() == "healthy" for n in nodes),
            timeout=timeout,
            what=f"{list(nodes)} to be healthy",
            interval=0.5,
        )


class ServiceNode:
    """One container of the cluster: its API, and the engine's controls over it."""

    def __init__(self, cluster: Cluster, service: str, replica: int = 1) -> None:
        self.cluster = cluster
        self.service = service
        self.replica = replica
        self._cid: str | None = None
        self._aliases: dict[str, list[str]] = {}
        self.http = httpx.Client(
            timeout=60.0, headers={"Authorization": f"Bearer {cluster.admin_token}"}
        )

    def __repr__(self) -> str:
        suffix = f"-{self.replica}" if self.service == "peer" else ""
        return f"[{self.service}{suffix}]"

    @property
    def cid(self) -> str:
        if self._cid is None:
            ids = self.cluster.container_ids(self.service)
            if len(ids) < self.replica:
                raise NodeFailure(f"{self} has no container")
            self._cid = ids[self.replica - 1]
        return self._cid

    def inspect(self, template: str) -> str:
        done = run(["docker", "inspect", "-f", template, self.cid])
        return done.stdout.decode().strip()

    def health(self) -> str:
        return self.inspect("{{if .State.Health}}{{.State.Health.Status}}{{end}}")

    def host_url(self) -> str | None:
        """The API's published address on the host, or None (none, stopped, cut off).
        Asked each time: a restart or a reconnect publishes the port anew."""
        done = run(["docker", "port", self.cid, f"{API_PORT}/tcp"])
        for line in done.stdout.decode().split():
            if line.startswith("127.") or line.startswith(self.cluster.env["AILEDGER_BIND"]):
                return f"http://{line}"
        return None

    # --- API -----------------------------------------------------------------------------

    def call(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        expect: int | Iterable[int] = 200,
        via: str = "auto",
    ) -> Any:
        """One API call; ``via`` is "host" (published port), "exec" or "auto"."""
        url = self.host_url() if via in ("auto", "host") else None
        if via == "host" and url is None:
            raise Unreachable(f"{self} has no published port")
        if url is not None:
            status, text = self._call_host(url, method, path, json_body)
        else:
            status, text = self._call_exec(method, path, json_body)
        allowed = {expect} if isinstance(expect, int) else set(expect)
        if status not in allowed:
            raise NodeFailure(f"{self} {method} {path} -> {status}: {text[:500]}")
        return json.loads(text) if text else None

    def _call_host(self, url: str, method: str, path: str, body: Any) -> tuple[int, str]:
        try:
            response = self.http.request(method, url + path, json=body)
        except httpx.HTTPError as exc:
            raise Unreachable(f"{self} {method} {path}: {exc!r}") from exc
        return response.status_code, response.text

    def _call_exec(self, method: str, path: str, body: Any) -> tuple[int, str]:
        data = json.dumps(body).encode() if body is not None else b""
        done = run(
            ["docker", "exec", "-i", self.cid, "python", "-c", EXEC_CALL, method, path],
            stdin=data,
            timeout=60,
        )
        if done.returncode != 0:
            error = done.stderr.decode(errors="replace").strip().splitlines()[-1:]
            raise Unreachable(f"{self} {method} {path} (exec): {error}")
        answer = json.loads(done.stdout)
        return int(answer["status"]), str(answer["body"])

    def status(self, via: str = "auto") -> dict[str, Any]:
        status: dict[str, Any] = self.call("GET", "/v1/status", via=via)
        return status

    def submit(self, tx: Transaction, via: str = "auto") -> str:
        answer = self.call("POST", "/v1/transactions", json_body=tx.to_json(), expect=202, via=via)
        txid: str = answer["txid"]
        return txid

    def tx(self, txid: str) -> dict[str, Any] | None:
        """The transaction's view, or None when this node does not know it."""
        view: dict[str, Any] | None = self.call(
            "GET", f"/v1/transactions/{txid}", expect=(200, 404)
        )
        return view if view and "error" not in view else None

    def block_hash_at(self, height: int) -> str | None:
        block = self.call("GET", f"/v1/blocks/{height}", expect=(200, 404))
        return None if not block or "error" in block else str(block["hash"])

    def set_mining(self, enabled: bool) -> None:
        self.call("POST", "/v1/admin/mining", json_body={"enabled": enabled})

    def mine(self, blocks: int) -> list[str]:
        hashes: list[str] = self.call("POST", "/v1/admin/mine", json_body={"blocks": blocks})[
            "hashes"
        ]
        return hashes

    def confirmed(self, txid: str) -> bool:
        view = self.tx(txid)
        return view is not None and view.get("status") == "confirmed"

    # --- the engine's controls -----------------------------------------------------------

    def kill(self) -> None:
        """SIGKILL the container (``docker kill``): no clean shutdown."""
        self._engine("kill", self.cid)

    def start(self) -> None:
        self._engine("start", self.cid)

    def networks(self) -> dict[str, list[str]]:
        """The container's networks and its DNS aliases on each."""
        raw = self.inspect("{{json .NetworkSettings.Networks}}")
        return {name: list(ep.get("Aliases") or []) for name, ep in json.loads(raw).items()}

    def disconnect(self) -> None:
        """Cut the container off every network (``docker network disconnect``)."""
        self._aliases = self.networks()
        for network in self._aliases:
            self._engine("network", "disconnect", network, self.cid)

    def reconnect(self) -> None:
        """Undo ``disconnect``, with the same aliases (the service name peers dial)."""
        for network, aliases in self._aliases.items():
            alias_args = [arg for alias in aliases for arg in ("--alias", alias)]
            self._engine("network", "connect", *alias_args, network, self.cid)
        self._aliases = {}

    def _engine(self, *args: str) -> None:
        done = run(["docker", *args], timeout=120)
        if done.returncode != 0:
            raise NodeFailure(
                f"{self} docker {' '.join(args[:3])}: "
                f"{done.stderr.decode(errors='replace').strip()}"
            )

    def logs(self, tail: int = 60) -> str:
        done = run(["docker", "logs", f"--tail={tail}", self.cid])
        text = (done.stdout + done.stderr).decode(errors="replace")
        return "\n".join(f"{self} {line}" for line in text.splitlines())

    def close(self) -> None:
        self.http.close()


def wait_for_block(
    nodes: Sequence[ServiceNode], height: int, block_hash: str, *, timeout: float = 180
) -> float:
    """Wait until ``block_hash`` is at ``height`` on every node's active chain (robust
    while the miners go on extending it)."""
    return wait_until(
        lambda: all(n.block_hash_at(height) == block_hash for n in nodes),
        timeout=timeout,
        what=f"{list(nodes)} to have {block_hash[:16]} at height {height}",
    )


def wait_same_tip(nodes: Sequence[ServiceNode], *, timeout: float = 180) -> str:
    """Wait until every node has the same best block (for when nobody mines); return it."""
    tips: set[str] = set()

    def same() -> bool:
        tips.clear()
        tips.update(n.status()["best_hash"] for n in nodes)
        return len(tips) == 1

    wait_until(same, timeout=timeout, what=f"{list(nodes)} to agree on the tip (have {tips})")
    return tips.pop()
