"""Fixtures for the docker compose end-to-end tests.

These tests build nothing and skip unless ``AILEDGER_E2E=1``: ``scripts/compose-e2e``
builds the image, sets that variable and a unique project prefix, runs them, and always
removes the projects afterwards (``down -v``). A failing test carries the compose logs in
its report. Measured figures (time to healthy, sync time) go to
``$AILEDGER_E2E_FIGURES`` (default ``.e2e/figures.json``), not into assertions.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from consensus.keys import private_key_from_seed
from consensus.tx import Transaction, sign_tx
from tests.e2e.cluster import ROOT, Cluster, ServiceNode

HERE = Path(__file__).resolve().parent
MINERS = ("node1", "node2", "node3")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    enabled = os.environ.get("AILEDGER_E2E") == "1"
    skip = pytest.mark.skip(reason="e2e: drives docker compose; run scripts/compose-e2e")
    for item in items:
        if HERE in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.e2e)
            if not enabled:
                item.add_marker(skip)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.failed and isinstance(item, pytest.Function):
        for value in item.funcargs.values():
            if isinstance(value, Cluster):
                report.sections.append((f"compose logs ({value.project})", value.logs()))
    return report


def project_name(suffix: str) -> str:
    prefix = os.environ.get("AILEDGER_E2E_PROJECT") or f"ailedger-e2e-{secrets.token_hex(3)}"
    return f"{prefix}-{suffix}"


def record_figure(name: str, value: float, unit: str) -> None:
    """Keep a measured figure for the run's report (``scripts/compose-e2e`` prints them)."""
    path = Path(os.environ.get("AILEDGER_E2E_FIGURES") or ROOT / ".e2e" / "figures.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    figures = json.loads(path.read_text()) if path.exists() else {}
    figures[name] = {"value": round(value, 2), "unit": unit}
    path.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"figure: {name} = {value:.2f} {unit}")


def start_cluster(cluster: Cluster, services: tuple[str, ...], figure: str) -> list[ServiceNode]:
    """``up -d`` and wait until the engine reports every node healthy."""
    nodes = [cluster.node(service) for service in services]
    start = time.monotonic()
    cluster.up(*services)
    cluster.wait_healthy(nodes)
    record_figure(figure, time.monotonic() - start, "s")
    return nodes


class Signer:
    """A fresh Ed25519 key per run that signs well-formed transactions for a network."""

    def __init__(self, network: str) -> None:
        self.network = network
        self.key = private_key_from_seed(secrets.token_bytes(32))
        self.nonce = 0

    def tx(self, kind: str, payload: dict[str, Any]) -> Transaction:
        self.nonce += 1
        return sign_tx(
            self.key,
            network=self.network,
            kind=kind,
            payload=payload,
            nonce=self.nonce,
            timestamp=time.time_ns() // 1_000_000,
        )


@pytest.fixture(scope="module")
def devnet() -> Iterator[Cluster]:
    """The user-facing ``docker-compose.yml`` as it is: three devnet miners."""
    cluster = Cluster(project_name("devnet"), admin_token=secrets.token_hex(16))
    try:
        start_cluster(cluster, MINERS, "devnet_up_to_all_healthy")
        yield cluster
    finally:
        cluster.down()


@pytest.fixture(scope="module")
def miners(devnet: Cluster) -> list[ServiceNode]:
    return [devnet.node(service) for service in MINERS]


@pytest.fixture
def signer() -> Signer:
    return Signer("devnet")
