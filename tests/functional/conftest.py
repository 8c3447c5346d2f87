"""Fixtures that start real nodes, always stop them, and dump their logs on failure."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.functional.framework import TestNode

NodeFactory = Callable[..., TestNode]


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def make_node(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[NodeFactory]:
    nodes: list[TestNode] = []

    def factory(*, start: bool = True, **kwargs: Any) -> TestNode:
        node = TestNode(len(nodes), tmp_path, **kwargs)
        nodes.append(node)
        if start:
            node.start()
        return node

    yield factory
    failed = any(
        getattr(getattr(request.node, f"report_{when}", None), "failed", False)
        for when in ("setup", "call")
    )
    for node in nodes:
        if failed:
            print(f"\n----- log of {node} -----\n{node.log_tail(60)}")
        node.close()
