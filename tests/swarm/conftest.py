"""Fixtures for the Docker Swarm end-to-end tests (``deploy/swarm/stack.yml``).

These tests build nothing and skip unless ``AILEDGER_SWARM_E2E=1``: ``scripts/swarm-e2e``
makes a single-node swarm when none is active, builds the image, sets that variable and
a unique stack prefix, runs them, and always removes what they made. Each test module
deploys its own stack and removes it (its secret and volumes too) when it is done. A
failing test carries the services' logs in its report; measured figures go to
``$AILEDGER_E2E_FIGURES``, not into assertions.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.cluster import ServiceNode
from tests.e2e.conftest import record_figure
from tests.swarm.stack import Stack

HERE = Path(__file__).resolve().parent
MINERS = ("node1", "node2", "node3")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    enabled = os.environ.get("AILEDGER_SWARM_E2E") == "1"
    skip = pytest.mark.skip(reason="e2e: drives a docker swarm stack; run scripts/swarm-e2e")
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
            if isinstance(value, Stack):
                report.sections.append((f"service logs ({value.project})", value.logs()))
    return report


def stack_name(suffix: str) -> str:
    prefix = os.environ.get("AILEDGER_SWARM_STACK") or f"ailedger-swarm-{secrets.token_hex(3)}"
    return f"{prefix}-{suffix}"


def new_stack(suffix: str, followers: int, env: Mapping[str, str] | None = None) -> Stack:
    return Stack(
        stack_name(suffix),
        admin_token=secrets.token_hex(16),
        env={**(env or {}), "AILEDGER_FOLLOWERS": str(followers)},
    )


def deploy(stack: Stack, suffix: str, followers: int) -> None:
    """Deploy ``stack`` and wait until every task is healthy (how long: a figure)."""
    start = time.monotonic()
    stack.deploy()
    for service in MINERS:
        stack.wait_tasks(service, 1)
    if followers:
        stack.wait_tasks("follower", followers)
    record_figure(f"swarm_{suffix}_deploy_to_all_healthy", time.monotonic() - start, "s")


@pytest.fixture(scope="module")
def devnet() -> Iterator[Stack]:
    """``deploy/swarm/stack.yml`` as it is: three devnet miners and two followers."""
    stack = new_stack("devnet", followers=2)
    try:
        deploy(stack, "devnet", followers=2)
        yield stack
    finally:
        stack.down()


def miners(stack: Stack) -> list[ServiceNode]:
    return [stack.node(service) for service in MINERS]
