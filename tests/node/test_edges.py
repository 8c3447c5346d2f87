"""Clean edges: a client that leaves mid-request, a platform without CPU affinity, and a
CLI that prints the txid before it waits."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from node import cli_records
from node.api import create_app
from tests.node.conftest import regtest_settings

ROOT = Path(__file__).resolve().parents[2]


async def test_a_client_leaving_mid_body_is_a_debug_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(regtest_settings(tmp_path))
    incoming = [
        {"type": "http.request", "body": b'{"version": 1, "net', "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/transactions",
        "raw_path": b"/v1/transactions",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), (b"host", b"node.test")],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
        "root_path": "",
        "app": app,
    }
    caplog.set_level(logging.DEBUG)
    async with app.router.lifespan_context(app):
        await app(scope, receive, send)
    assert sent[0]["status"] == 400
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not [r for r in caplog.records if r.exc_info]
    assert any(
        "client disconnected during POST /v1/transactions" in r.message
        for r in caplog.records
        if r.levelno == logging.DEBUG
    )


def test_the_node_starts_where_cpu_affinity_is_unknown() -> None:
    script = (
        "import os; del os.sched_getaffinity\n"
        "import node.daemon\n"
        "print(node.daemon.CHECK_WORKERS)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) == min(8, max(2, os.cpu_count() or 1))


class _SlowNode:
    """A client whose confirmation never comes."""

    def wait_for_confirmation(self, txid: str, *, timeout: float) -> dict[str, Any]:
        raise TimeoutError(f"{txid} has not 1 confirmation(s) yet")


def test_the_txid_is_printed_before_the_wait(capsys: pytest.CaptureFixture[str]) -> None:
    txid = "ab" * 32
    with pytest.raises(TimeoutError):
        cli_records.submitted(_SlowNode(), txid, wait=5)  # type: ignore[arg-type]
    assert capsys.readouterr().out.strip() == txid
