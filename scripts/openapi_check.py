"""Check the node's OpenAPI description against the node itself, with schemathesis.

Starts a real regtest node (fresh data directory, an admin token, a free port on
127.0.0.1), then runs ``schemathesis run <node>/openapi.json --checks all`` with a fixed
seed over every operation the description lists, whatever routes the node has: the
public API, the admin API (the token is sent on every request) and the peer protocol
under /p2p (called as any peer would call it: without a session they may answer 401,
which is fine as long as the description lists it). Settings that are not flags are in
``scripts/openapi-check.toml``.

Prints the number of cases generated and of failures, and exits non-zero on any failure
(or when schemathesis cannot run). ``--max-examples`` bounds the run's time.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "scripts" / "openapi-check.toml"
TOKEN = "openapi-check-admin-token"
SEED = 20261205
MAX_EXAMPLES = 25
START_TIMEOUT_S = 60.0
CLOSED = "http://127.0.0.1:9"
NODE_ENV = {
    # The fuzzer is one client sending many writes: test the routes, not the rate limiter
    # (429 stays documented, and tested in tests/node).
    "AILEDGER_RATE_LIMIT_PER_S": "1000000",
    "AILEDGER_RATE_LIMIT_BURST": "1000000",
    # The fuzzer names peers (POST /v1/admin/peers, X-Ailedger-Listen) that the node then
    # calls: every outgoing call goes to a closed local port, never off this machine.
    "HTTP_PROXY": CLOSED,
    "HTTPS_PROXY": CLOSED,
    "ALL_PROXY": CLOSED,
    "NO_PROXY": "",
}
_CASES = re.compile(r"(\d+) generated")
_FAILURES = re.compile(r"(\d+) unique failures?")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def running_node(data_dir: Path) -> Iterator[str]:
    """A regtest node on a free port; its base URL. Ended (its whole group) on exit."""
    port = free_port()
    command = [
        sys.executable, "-m", "node", "node", "--network", "regtest", "--host", "127.0.0.1",
        "--port", str(port), "--data-dir", str(data_dir), "--admin-token", TOKEN,
        "--log-level", "warning", "--blob-quota", "64MiB",
    ]  # fmt: skip
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AILEDGER_") and k.upper() not in NODE_ENV
    }
    log = (data_dir / "node.log").open("ab")
    process = subprocess.Popen(
        command, cwd=ROOT, env={**env, **NODE_ENV}, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, process)
        yield url
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=15)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=15)
        log.close()


def _wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the node exited with {process.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"the node did not answer /healthz in {START_TIMEOUT_S:.0f} s")


def schemathesis(url: str, max_examples: int, workdir: Path) -> tuple[int, str]:
    command = [
        str(Path(sys.executable).with_name("schemathesis")), "--config-file", str(CONFIG),
        "run", f"{url}/openapi.json", "--checks", "all", "--seed", str(SEED),
        "--max-examples", str(max_examples), "--generation-database", "none",
        "--header", f"Authorization: Bearer {TOKEN}", "--no-color",
        "--report", "junit", "--report-junit-path", str(workdir / "junit.xml"),
    ]  # fmt: skip
    done = subprocess.run(command, cwd=workdir, capture_output=True, text=True, check=False)
    return done.returncode, done.stdout + done.stderr


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-examples", type=int, default=MAX_EXAMPLES, metavar="N")
    parser.add_argument("--keep", action="store_true", help="print the whole schemathesis log")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ailedger-openapi-") as tmp:
        workdir = Path(tmp)
        started = time.monotonic()
        with running_node(workdir) as url:
            code, output = schemathesis(url, args.max_examples, workdir)
        elapsed = time.monotonic() - started
        if code != 0 or args.keep:
            print(output)
        cases = _CASES.search(output)
        failures = _FAILURES.search(output)
        if cases is None:
            print(f"openapi-check: schemathesis did not run (exit {code})", file=sys.stderr)
            return code or 1
        found = int(failures.group(1)) if failures is not None else 0
        print(
            f"openapi-check: {int(cases.group(1)):,} cases generated, {found} failures"
            f" ({elapsed:.0f} s, seed {SEED}, at most {args.max_examples} examples an operation)"
        )
        return code if code != 0 else (1 if found else 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
