"""The explorer in a real browser: Playwright driving Debian's chromium against a real
regtest node holding a dataset -> model -> inference lineage and a revoked model.

Every request the page makes outside 127.0.0.1 is blocked and recorded, so the tests
also prove that the page (and /docs) work offline. Screenshots are kept in the test's
temporary directory (printed at the end of the module).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node.client import Client
from tests.browser.explorer import Lineage, chromium_path, make_lineage
from tests.functional.framework import TestNode, wait_until

playwright_api = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.functional

CHROMIUM = chromium_path()
if CHROMIUM is None:  # scripts/test installs chromium with apt; this is the last resort
    pytest.skip(
        "NO BROWSER: the explorer's browser tests are SKIPPED; install Debian's chromium "
        "(apt-get install chromium) or set AILEDGER_CHROMIUM",
        allow_module_level=True,
    )


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestNode]:
    test_node = TestNode(0, tmp_path_factory.mktemp("explorer-node"))
    test_node.start()
    try:
        yield test_node
    finally:
        test_node.close()


@pytest.fixture(scope="module")
def lineage(node: TestNode, tmp_path_factory: pytest.TempPathFactory) -> Lineage:
    return make_lineage(node, tmp_path_factory.mktemp("explorer-files"))


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("explorer-screenshots")
    yield folder
    print(f"\nexplorer screenshots: {folder}")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # A module-scoped sync Playwright: its own loop is never pytest-asyncio's.
    with playwright_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM)
        try:
            yield launched
        finally:
            launched.close()


class Page:
    """A browser tab on the node that blocks (and records) every non-local request."""

    def __init__(self, browser: Any, node: TestNode, shots: Path) -> None:
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.page = self.context.new_page()
        self.node = node
        self.shots = shots
        self.foreign: list[str] = []
        self.errors: list[str] = []
        self.context.route("**/*", self._only_local)
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def _only_local(self, route: Any) -> None:
        if urlsplit(route.request.url).hostname in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            self.foreign.append(route.request.url)
            route.abort()

    def open(self, fragment: str = "") -> Any:
        self.page.goto(f"{self.node.url}/{fragment}")
        return self.page

    def search(self, text: str) -> None:
        box = self.page.locator('input[type="search"]')
        box.fill(text)
        box.press("Enter")

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(self.shots / f"{name}.png"), full_page=True)


@pytest.fixture
def tab(browser: Any, node: TestNode, shots: Path) -> Iterator[Page]:
    page = Page(browser, node, shots)
    try:
        yield page
        assert page.foreign == [], f"the page called outside its node: {page.foreign}"
        assert page.errors == [], f"script errors: {page.errors}"
    finally:
        page.context.close()


def graph_txids(tab: Page) -> set[str]:
    nodes = tab.page.locator("svg.lineage [data-txid]")
    return {nodes.nth(i).get_attribute("data-txid") for i in range(nodes.count())}


def proof_word(tab: Page) -> str:
    state = tab.page.locator(".proof .proof-state")
    state.filter(has_text=re.compile("verified")).wait_for()
    return str(state.inner_text()).strip()


def test_lineage_graph_shows_ancestors_and_descendants(tab: Page, lineage: Lineage) -> None:
    page = tab.open(f"#/tx/{lineage.dataset}")
    page.locator(f'svg.lineage [data-txid="{lineage.inference}"]').wait_for()
    assert graph_txids(tab) >= {lineage.dataset, lineage.model, lineage.inference}
    svg_text = page.locator("svg.lineage").text_content() or ""
    for drawn in (
        "dataset",
        "example-corpus",
        "model",
        "example-model",
        "inference",
        "training_data",
    ):
        assert drawn in svg_text
    tab.shot("lineage-dataset")
    with page.expect_download() as svg_download:
        page.get_by_role("button", name="export SVG").click()
    exported = Path(svg_download.value.path()).read_text()
    assert exported.startswith("<?xml") and "training_data" in exported
    assert all(f'data-txid="{t}"' in exported for t in (lineage.model, lineage.inference))
    with page.expect_download() as json_download:
        page.get_by_role("button", name="export JSON").click()
    graph = json.loads(Path(json_download.value.path()).read_text())
    assert {lineage.dataset, lineage.model, lineage.inference} <= {
        n["txid"] for n in graph["nodes"]
    }

    page.locator('input[name="descendants"]').uncheck()
    assert graph_txids(tab) == {lineage.dataset}
    page.get_by_text("descendants", exact=True).click()
    assert lineage.inference in graph_txids(tab)

    tab.open(f"#/tx/{lineage.inference}")
    page.locator(f'svg.lineage [data-txid="{lineage.dataset}"]').wait_for()
    assert graph_txids(tab) >= {lineage.dataset, lineage.model, lineage.inference}

    page.locator(f'svg.lineage [data-txid="{lineage.model}"]').click()
    page.wait_for_url(f"**/#/tx/{lineage.model}")
    page.locator("h1", has_text="example-model").wait_for()


def test_search_finds_records_blocks_heights_and_digests(tab: Page, lineage: Lineage) -> None:
    page = tab.open()
    assert page.locator('input[type="search"]').count() == 1

    tab.search(lineage.model)
    page.wait_for_url(f"**/#/tx/{lineage.model}")
    page.locator("h1", has_text="example-model").wait_for()
    assert lineage.model in page.locator("main").inner_text()

    tab.search(lineage.model_block)
    page.locator("h1", has_text=f"Block {lineage.model_height}").wait_for()
    assert lineage.model_block in page.locator("main").inner_text()

    tab.search("1")
    page.locator("h1", has_text="Block 1").wait_for()

    tab.search(lineage.dataset_digest)
    page.locator(f'main a[href="#/tx/{lineage.dataset}"]').wait_for()
    assert lineage.dataset_digest in page.locator("h1").inner_text()

    page.locator("main h1").click()  # away from the search box, then back with its shortcut
    page.keyboard.press("/")
    page.keyboard.type(lineage.inference)
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/#/tx/{lineage.inference}")

    tab.search("no-such-thing")
    page.get_by_text("Nothing on this node matches").wait_for()
    assert page.locator('input[type="search"]').count() == 1


def test_revoked_record_shows_a_banner_linked_to_its_revocation(
    tab: Page, lineage: Lineage
) -> None:
    page = tab.open(f"#/tx/{lineage.revoked}")
    banner = page.locator(".banner.revoked")
    banner.wait_for()
    assert "revoked" in banner.inner_text()
    assert banner.locator(f'a[href="#/tx/{lineage.revocation}"]').count() == 1
    revoked_node = page.locator(f'svg.lineage [data-txid="{lineage.revoked}"]')
    revoked_node.wait_for()
    assert "revoked" in (revoked_node.text_content() or "")
    tab.shot("revoked")


def test_proof_panel_verifies_in_the_browser(tab: Page, lineage: Lineage) -> None:
    tab.open(f"#/tx/{lineage.model}")
    assert proof_word(tab) == "verified"
    tab.shot("proof-verified")


@pytest.mark.parametrize("field", ["leaf", "audit_path", "header", "txid"])
def test_proof_panel_refuses_a_tampered_proof(tab: Page, lineage: Lineage, field: str) -> None:
    def tamper(route: Any) -> None:
        proof = route.fetch().json()
        value = proof[field][0] if field == "audit_path" else proof[field]
        flipped = value[:10] + ("0" if value[10] != "0" else "1") + value[11:]
        if field == "audit_path":
            proof[field][0] = flipped
        else:
            proof[field] = flipped
        route.fulfill(status=200, content_type="application/json", body=json.dumps(proof))

    tab.page.route("**/v1/transactions/*/proof", tamper)
    page = tab.open(f"#/tx/{lineage.model}")  # in a block of two: its path has one hash
    assert proof_word(tab) == "not verified"
    assert page.locator(".checks li.bad").count() >= 1
    tab.shot(f"proof-tampered-{field}")


def test_views_have_permalink_raw_json_and_csv(tab: Page, lineage: Lineage) -> None:
    page = tab.open(f"#/block/{lineage.model_height}")
    page.locator("h1", has_text=f"Block {lineage.model_height}").wait_for()
    page.locator(f'main a[href="#/tx/{lineage.model}"]').wait_for()
    assert page.locator("a.permalink").get_attribute("href") == f"#/block/{lineage.model_block}"
    page.get_by_role("button", name="raw JSON").click()
    assert lineage.model_block in page.locator("pre.raw").inner_text()
    with page.expect_download() as download:
        page.get_by_role("button", name="CSV").click()
    csv = Path(download.value.path()).read_text()
    assert lineage.model in csv and lineage.revoked in csv
    for fragment, heading in (
        ("#/tips", "Chain tips"),
        ("#/mempool", "Mempool"),
        ("#/peers", "Peers"),
    ):
        tab.open(fragment)
        page.locator("h1", has_text=heading).wait_for()
    page.locator("#status", has_text="regtest").wait_for()
    tab.shot("peers")


def test_verify_a_file_names_who_registered_it(tab: Page, lineage: Lineage, tmp_path: Path) -> None:
    sample = tmp_path / "corpus.txt"
    sample.write_bytes(b"the quick brown fox jumps over the lazy dog\n")
    page = tab.open("#/verify")
    page.locator('input[type="file"]').set_input_files(str(sample))
    page.locator(".answer", has_text="Registered").wait_for()
    assert page.locator(f'a[href="#/tx/{lineage.dataset}"]').count() == 1
    assert lineage.dataset_digest in page.locator("main").inner_text()
    page.get_by_role("button", name="raw JSON").click()
    assert json.loads(page.locator("pre.raw").inner_text())["digest"] == lineage.dataset_digest


def test_javascript_sha256_matches_webcrypto(tab: Page) -> None:
    page = tab.open()
    same = page.evaluate(
        """async () => {
            const m = await import("./static/sha256.js");
            const out = [];
            for (const n of [0, 1, 55, 56, 63, 64, 65, 1000]) {
                const data = new Uint8Array(n).map((_, i) => (i * 31 + 7) & 255);
                const web = new Uint8Array(await crypto.subtle.digest("SHA-256", data));
                out.push(m.toHex(m.sha256Js(data)) === m.toHex(web));
            }
            return out;
        }"""
    )
    assert same == [True] * 8


def test_docs_and_redoc_render_offline(tab: Page) -> None:
    page = tab.open("docs")
    page.locator(".opblock").first.wait_for()
    assert page.locator(".opblock").count() >= 15
    assert page.locator(".opblock-summary-path", has_text="/v1/search").count() == 1
    tab.shot("docs")
    page = tab.open("redoc")
    page.get_by_text("/v1/records/{txid}/lineage").first.wait_for(state="attached")
    tab.shot("redoc")


def test_assets_are_utf8_and_the_page_calls_only_its_node(node: TestNode) -> None:
    page = httpx.get(f"{node.url}/")
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "default-src 'self'" in page.headers["content-security-policy"]
    scripts = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert scripts and all(not s.startswith(("http:", "https:", "//")) for s in scripts)
    for name, kind in (("app.js", "text/javascript"), ("app.css", "text/css")):
        response = httpx.get(f"{node.url}/static/{name}")
        assert response.headers["content-type"] == f"{kind}; charset=utf-8"
        again = httpx.get(
            f"{node.url}/static/{name}", headers={"If-None-Match": response.headers["etag"]}
        )
        assert again.status_code == 304
    missing = httpx.get(f"{node.url}/static/../pyproject.toml")
    assert missing.status_code == 404


def test_tips_page_shows_a_side_branch(
    browser: Any, shots: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Two nodes mine apart (2 blocks and 3), then one dials the other: it reorganises to
    the heavier chain and keeps its own 2 blocks as a valid fork, drawn on the tips page."""
    root = tmp_path_factory.mktemp("explorer-fork")
    light, heavy = TestNode(1, root), TestNode(2, root)
    tab = None
    try:
        light.start()
        heavy.start()
        fork = light.mine(2)
        heavy.mine(3)
        light.call("POST", "/v1/admin/peers", json={"url": heavy.url})
        wait_until(
            lambda: light.status()["best_hash"] == heavy.status()["best_hash"],
            what="the light node to follow the heavier chain",
        )
        tab = Page(browser, light, shots)
        page = tab.open("#/tips")
        branch = page.locator(".panel", has_text="side branch of 2 block(s)")
        branch.wait_for()
        assert "valid-fork" in branch.inner_text()
        for block_hash in fork:
            assert branch.locator(f'a[href="#/block/{block_hash}"]').count() == 1
        branch.locator(f'a[href="#/block/{fork[-1]}"]').click()
        page.get_by_text("not on the active chain").wait_for()
        tab.shot("tips-fork")
        assert tab.foreign == [] and tab.errors == []
    finally:
        if tab is not None:
            tab.context.close()
        light.close()
        heavy.close()


def test_a_pending_record_is_listed_in_the_mempool_and_opens(
    tab: Page, node: TestNode, lineage: Lineage
) -> None:
    key = Ed25519PrivateKey.generate()
    with Client(node.url) as client:
        pending = client.attest(lineage.model, "eval/accuracy", {"accuracy": 0.9}, key=key)
    page = tab.open("#/mempool")
    page.locator(f'main a[href="#/tx/{pending}"]').click()
    page.locator("h1", has_text="eval/accuracy").wait_for()
    assert page.locator(".pill.pending").inner_text() == "pending"
    assert page.locator(".proof").count() == 0
    page.get_by_text("once the record is in a block").wait_for()
