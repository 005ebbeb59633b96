"""The API explorer at `/docs`, through a real `astra serve`: the page and its assets are served
with the right content types, open without the token (a browser cannot send one when it
navigates) while the API stays closed, and the page references nothing but this server."""

from __future__ import annotations

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
                        ("/docs/explorer.css", "text/css")):
        status, headers, body = fetch(server, path)
        assert status == 200, (path, body)
        assert headers["content-type"].split(";")[0] == ctype, (path, headers)
        assert "charset=utf-8" in headers["content-type"]
        assert "default-src 'none'" in headers["content-security-policy"]
        assert len(body) > 200, path
    status, _, _ = fetch(server, "/v1/registry")  # the API itself still needs the token
    assert status == 401
    assert server.client.get("/v1/registry")[0] == 200


def test_the_page_references_only_this_servers_assets(server) -> None:
    _, _, page = fetch(server, "/docs")
    refs = Refs()
    refs.feed(page)
    assert set(refs.urls) == {"/docs/explorer.css", "/docs/explorer.js", "/openapi.json"}, refs.urls
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
