"""The API explorer at `/docs`, through a real `astra serve`: the page and its assets are served
with the right content types, open without the token (a browser cannot send one when it
navigates) while the API stays closed, and the page references nothing but this server."""

from __future__ import annotations

import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
from serve_harness import FEATURES, launch

TOKEN = "t0ken"


class Refs(HTMLParser):
    """Every URL an HTML page refers to (src, href, action, srcset...)."""

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("src", "href", "action", "data", "poster", "srcset", "formaction") and value:
                self.urls.append(value)


@pytest.fixture(scope="module")
def server(tmp_path_factory, demo):
    proj = tmp_path_factory.mktemp("explorer") / "features"
    shutil.copytree(FEATURES, proj, ignore=shutil.ignore_patterns("build"))
    s = launch(proj, tmp_path_factory.mktemp("explorer-state") / "state", "--data-root", str(demo), token=TOKEN)
    yield s
    s.stop()


def fetch(server, path: str):
    server.client.token = None  # as a browser navigating: no Authorization header
    try:
        return server.client.get(path)
    finally:
        server.client.token = TOKEN


def test_page_and_assets_are_served_with_their_content_types(server) -> None:
    for path, ctype in (("/docs", "text/html"), ("/docs/explorer.js", "text/javascript"),
                        ("/docs/explorer.css", "text/css"), ("/docs/favicon.svg", "image/svg+xml")):
        status, headers, body = fetch(server, path)
        assert status == 200, (path, body)
        assert headers["content-type"].split(";")[0] == ctype, (path, headers)
        assert "charset=utf-8" in headers["content-type"] or ctype.startswith("image/")
        assert "default-src 'none'" in headers["content-security-policy"]
        assert len(body) > 200, path
    status, _, _ = fetch(server, "/v1/registry")  # the API itself still needs the token
    assert status == 401
    assert server.client.get("/v1/registry")[0] == 200


def test_the_page_references_only_this_servers_assets(server) -> None:
    _, _, page = fetch(server, "/docs")
    refs = Refs()
    refs.feed(page)
    local = {"/docs/explorer.css", "/docs/explorer.js", "/docs/favicon.svg", "/openapi.json"}
    assert set(refs.urls) == local, refs.urls
    assert "href" not in fetch(server, "/docs/favicon.svg")[2]  # its xmlns names a namespace, fetches nothing
    for path in ("/docs/explorer.js", "/docs/explorer.css"):
        _, _, text = fetch(server, path)
        # no other origin: no scheme-relative or absolute URL, no @import or url() of another host
        assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/|@import", text, re.I), path
        assert fetch(server, path)[0] == 200
    _, _, script = fetch(server, "/docs/explorer.js")
    assert 'fetch("/openapi.json")' in script  # the page reads the document this server serves
    assert "innerHTML" not in script  # answers are shown as text, never as markup


def test_the_document_the_page_reads_is_served_next_to_it(server) -> None:
    status, headers, doc = fetch(server, "/openapi.json")
    assert status == 200 and headers["content-type"].startswith("application/json")
    assert "/v1/features" in doc["paths"] and "requestBody" in doc["paths"]["/v1/features"]["post"]


@pytest.mark.parametrize("path", ["/docs/", "/docs/../openapi.json", "/docs/index.html", "/docs/explorer.py"])
def test_nothing_else_under_docs_is_served(server, path: str) -> None:
    status, headers, _ = fetch(server, path)
    assert status in (401, 404), (path, status)  # unknown paths are closed like the API, never a file
    assert headers["content-type"].startswith("application/json")


def test_assets_ship_in_the_package() -> None:
    from astra.serve import explorer

    for name, _ in explorer.ASSETS.values():
        assert (explorer.HERE / name).is_file(), name
    assert Path(explorer.__file__).parent.name == "serve"


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def page():
    """A page in Debian's headless Chromium driven by Playwright; skipped, saying why, when it cannot start."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as err:
        pytest.skip(f"BROWSER TEST SKIPPED: Playwright is not importable ({err})")
    if not CHROMIUM.exists():
        pytest.skip(f"BROWSER TEST SKIPPED: {CHROMIUM} does not exist (.ci/run installs Debian's chromium)")
    pw = sync_playwright().start()
    try:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=60_000)
    except Exception as err:
        pw.stop()
        pytest.skip(f"BROWSER TEST SKIPPED: Chromium could not be launched: {' '.join(str(err).split())[:300]}")
    p = browser.new_page()
    p.set_default_timeout(30_000)
    yield p
    browser.close()
    pw.stop()


def test_in_a_browser_pick_an_endpoint_edit_the_body_send_it_and_read_the_answer(server, page) -> None:
    from playwright.sync_api import expect

    errors, requests = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(f"{server.url}/docs")
    features = page.locator("nav button", has_text="/v1/features")
    features.click()
    proposed = json.loads(page.locator("#body").input_value())  # a body built from the schema
    assert proposed["service"] in ("checkout_analysis", "fraud_model", "fraud_scores", "profile_lookup")
    assert isinstance(proposed["entities"], list)
    body = {"service": "fraud_model", "version": 1, "entities": [{"user_id": 1}], "features": ["tx_count_7d"]}
    page.fill("#body", json.dumps(body))
    page.click("#send")  # no token yet: the API refuses, and the page says so
    expect(page.locator("#status")).to_have_text(re.compile(r"^401"))
    page.fill("#token", TOKEN)
    page.click("#send")
    expect(page.locator("#status")).to_have_text(re.compile(r"^200"))  # (the page's CSP forbids eval'd waits)
    answer = json.loads(page.locator("#response").inner_text())
    assert answer["service"] == "fraud_model" and [f["name"] for f in answer["features"]] == ["tx_count_7d"]
    page.fill("#body", "{not json")
    page.click("#send")
    assert "not JSON" in page.locator("#body-error").inner_text()
    page.locator("nav button", has_text="/healthz").click()
    assert page.locator("#body-part").is_hidden()  # a GET has no body
    page.click("#send")
    expect(page.locator("#response")).to_contain_text('"ok"')
    assert all("401" in e for e in errors), errors  # only the refused request, which the browser logs
    assert requests and all(u.startswith(server.url + "/") for u in requests), requests  # nothing off the server


def test_every_body_the_page_proposes_is_accepted_as_it_is(server, page) -> None:
    """For each service version and each source, the body built from the schema is a valid request:
    keys, required request inputs (given one of the two ways the schema allows), times as ISO text."""
    from playwright.sync_api import expect

    page.goto(f"{server.url}/docs")
    page.fill("#token", TOKEN)
    seen = []
    for path in ("/v1/features", "/v1/push"):
        page.locator("nav button", has_text=path).click()
        for i in range(page.locator("#variant option").count()):
            page.select_option("#variant", str(i))
            proposed = json.loads(page.locator("#body").input_value())
            page.click("#send")
            expect(page.locator("#status")).to_have_text(re.compile(r"^\d{3}"))  # not "sending…"
            status = page.locator("#status").inner_text()
            answer = json.loads(page.locator("#response").inner_text())
            assert status.startswith("200"), (path, proposed, answer)
            if path == "/v1/push":
                assert answer["accepted"] == 1 and answer["rejected"] == [], (proposed, answer)
            seen.append(proposed.get("service") or proposed.get("source"))
    assert set(seen) == {"checkout_analysis", "fraud_model", "fraud_scores", "profile_lookup", "transactions",
                         "profiles", "products"}, seen
