"""Figure 11: the explorer page in headless Chromium (Debian's, driven by Playwright).

11  first load of ``/`` (the block list), kilobytes transferred with an empty cache
11b time from navigation until a lineage of 500 records is drawn (record page opened cold)
11c requests a minute from an idle open page (the status bar's polling)
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import httpx

from benchlib.procs import node_server
from benchlib.report import Figure, Goal
from benchlib.txs import TxFactory
from consensus.tx import Transaction, digest_of_bytes

__all__ = ["bench_explorer"]

SECTION = "explorer"
MODELS = 20
GRAPH_RECORDS = 500
DRAW_REPEATS = 5
IDLE_SETTLE_S = 5.0
IDLE_WINDOW_S = 30.0
CHROMIUM = "/usr/lib/chromium/chromium"


def _graph(factory: TxFactory) -> tuple[list[Transaction], list[Transaction]]:
    """One dataset, ``MODELS`` models trained on it, and inferences of those models up to
    ``GRAPH_RECORDS`` records in all: the dataset's lineage (its descendants)."""
    root = factory.dataset("bench-corpus")
    models = [
        factory.sign(
            "model",
            {
                "name": f"bench-model-{m}",
                "digest": digest_of_bytes(f"bench-model-{m}".encode()),
                "inputs": [{"ref": root.txid, "role": "training_data"}],
            },
        )
        for m in range(MODELS)
    ]
    inferences = [
        factory.sign(
            "inference",
            {
                "model": models[i % MODELS].txid,
                "input_digest": digest_of_bytes(f"in-{i}".encode()),
                "output_digest": digest_of_bytes(f"out-{i}".encode()),
            },
        )
        for i in range(GRAPH_RECORDS - 1 - MODELS)
    ]
    return [root, *models], inferences


def _confirm(client: httpx.Client, txs: list[Transaction]) -> None:
    body = {"transactions": [tx.to_json() for tx in txs]}
    results = client.post("/v1/transactions/batch", json=body).raise_for_status().json()
    refused = [r for r in results["results"] if r["status"] != "accepted"]
    if refused:
        raise RuntimeError(f"{len(refused)} records refused, first: {refused[0]}")
    client.post("/v1/admin/mine", json={"blocks": 1}).raise_for_status()


def _first_load_kb(browser: Any, url: str) -> tuple[float, int]:
    context = browser.new_context()
    page = context.new_page()
    requests: list[Any] = []

    # A bound method cannot carry Playwright's handler mark: a plain function it is.
    def finished(request: Any) -> None:
        requests.append(request)

    page.on("requestfinished", finished)
    page.goto(f"{url}/")
    page.wait_for_load_state("networkidle")
    page.locator("main table").wait_for()
    total = 0
    for request in requests:
        sizes = request.sizes()
        total += sizes["responseBodySize"] + sizes["responseHeadersSize"]
    context.close()
    return total / 1000, len(requests)


def _draw_ms(browser: Any, url: str, root: str) -> tuple[float, float]:
    """Milliseconds from navigation until the graph is in the page, and of those the
    part after its records arrived (layout and drawing)."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{url}/#/tx/{root}")
    nodes = page.locator("svg.lineage [data-txid]")
    nodes.nth(GRAPH_RECORDS - 1).wait_for(state="attached", timeout=60_000)
    elapsed: float = page.evaluate("performance.now()")
    marks = {
        mark["name"]: mark["startTime"]
        for mark in page.evaluate("performance.getEntriesByType('mark').map((m) => m.toJSON())")
    }
    context.close()
    return elapsed, marks["lineage-drawn"] - marks["lineage-fetched"]


def _idle_per_minute(browser: Any, url: str) -> float:
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{url}/")
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(IDLE_SETTLE_S * 1000)
    seen: list[str] = []
    page.on("request", lambda request: seen.append(request.url))
    page.wait_for_timeout(IDLE_WINDOW_S * 1000)
    context.close()
    return len(seen) * 60 / IDLE_WINDOW_S


def bench_explorer(workdir: Path) -> list[Figure]:
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 - only this bench needs it

    first, inferences = _graph(TxFactory())
    with node_server(workdir, "explorer") as node, node.client() as client:
        _confirm(client, first)
        _confirm(client, inferences)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM)
            try:
                kb, requests = _first_load_kb(browser, node.url)
                draws = [_draw_ms(browser, node.url, first[0].txid) for _ in range(DRAW_REPEATS)]
                idle = _idle_per_minute(browser, node.url)
            finally:
                browser.close()
    draw = statistics.median(total for total, _ in draws)
    drawing = statistics.median(part for _, part in draws)
    return [
        Figure(
            "13", SECTION, "first load of / (empty cache, /docs excluded)", kb, "KB",
            Goal("<=", 200), f"{requests} requests, headers included",
        ),
        Figure(
            "13b", SECTION, f"lineage of {GRAPH_RECORDS} records drawn, from navigation", draw,
            "ms", Goal("<=", 1000),
            f"median of {DRAW_REPEATS} cold page loads ({', '.join(f'{d:.0f}' for d, _ in draws)}"
            f" ms); of which layout and drawing {drawing:.0f} ms",
        ),
        Figure(
            "13c", SECTION, "requests a minute, idle open page", idle, "req/min", None,
            f"counted over {IDLE_WINDOW_S:.0f} s after the page settled",
        ),
    ]  # fmt: skip
