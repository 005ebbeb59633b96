"""The catalog in a real browser: Debian's Chromium, driven by Playwright, opening the site from
the file system as a user would (no server).  Skipped, loudly, when the browser cannot start."""

from __future__ import annotations

from collections import deque
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlsplit

import pytest
from conftest import HOSTILE

TIMEOUT = 15_000  # ms, for every wait


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1200, "height": 900})
    p = ctx.new_page()
    p.set_default_timeout(TIMEOUT)
    p.problems = []  # console errors, page errors, dialogs, requests that leave the file system
    p.on("console", lambda m: p.problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    p.on("pageerror", lambda e: p.problems.append(f"page error: {e}"))
    p.on("dialog", lambda d: (p.problems.append(f"dialog: {d.message}"), d.dismiss()))
    p.on("request", lambda r: None if r.url.startswith(("file://", "data:")) else p.problems.append(
        f"request off the file system: {r.url}"))
    yield p
    ctx.close()


def results(page) -> list[str]:
    page.wait_for_selector("#results:not([hidden])")
    return page.locator("#results li a").all_inner_texts()


def test_search_finds_names_descriptions_owners_and_tags(page, site: Path):
    page.goto((site / "index.html").as_uri())
    box = page.locator("#search")
    box.fill("spend")
    found = results(page)
    assert {"user_spend@v1", "user_spend@v2", "user_spend@v1.tx_sum_7d"} <= set(found)
    assert all("spend" in f for f in found)  # the example uses the word only in names
    box.fill("merchant-risk")  # an owner: merchant_activity's
    found = results(page)
    assert "merchant_activity@v1" in found and "merchant_activity@v1.customers_7d" in found
    assert all(f.startswith("merchant_activity@v1") for f in found)
    box.fill("accepts cards")  # the description of entity merchant, "A place that accepts cards"
    assert results(page) == ["merchant"]
    box.fill("risk spend")  # tags of both user_spend versions, every word must match
    assert {"user_spend@v1", "user_spend@v2"} <= set(results(page))
    box.fill("tx_mean_7d")
    assert results(page)[0] == "user_spend@v1.tx_mean_7d"
    box.fill("no such thing anywhere")
    page.wait_for_selector("#results li.empty")
    assert page.locator("#results li a").count() == 0
    box.fill("tx_sum_1")  # the arrow keys walk the results and back to the box
    box.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    assert page.evaluate("document.activeElement.textContent") == results(page)[1]
    page.keyboard.press("ArrowUp")
    page.keyboard.press("ArrowUp")
    assert page.evaluate("document.activeElement.id") == "search"
    box.fill("spend_ratio")
    box.press("Enter")  # opens the first result
    page.wait_for_url("**/feature/user_spend.v1.spend_ratio_1d_30d.html")
    assert page.locator("h1").inner_text().startswith("spend_ratio_1d_30d")
    assert page.problems == []


def test_follow_a_lineage_link(page, site: Path):
    page.goto((site / "feature" / "user_spend.v1.spend_ratio_1d_30d.html").as_uri())
    # the drawing reads tx_sum_1d: click its node
    page.locator('svg.lineage a[href$="user_spend.v1.tx_sum_1d.html"]').click()
    page.wait_for_url("**/feature/user_spend.v1.tx_sum_1d.html")
    assert page.locator("h1").inner_text().startswith("tx_sum_1d")
    # and from there, downstream, back to the ratio; then upstream to the source column
    assert page.locator('svg.lineage a[href$="user_spend.v1.spend_ratio_1d_30d.html"]').count() == 1
    page.locator('svg.lineage a[href$="source/transactions.html#col-amount"]').click()
    page.wait_for_url("**/source/transactions.html#col-amount")
    assert page.locator("#col-amount").is_visible()
    assert page.problems == []


def test_every_link_of_every_page_resolves_and_no_page_logs_an_error(page, site: Path):
    start = (site / "index.html").as_uri()
    queue, seen = deque([start]), {start}
    ids: dict[str, set[str]] = {}
    anchors: list[tuple[str, str, str]] = []  # page, target page, fragment
    problems = []
    while queue:
        url = queue.popleft()
        page.problems.clear()
        response = page.goto(url)
        assert response is None or response.ok, url
        problems += [f"{url}: {p}" for p in page.problems]
        ids[url] = set(page.eval_on_selector_all("[id]", "els => els.map(e => e.id)"))
        hrefs = page.eval_on_selector_all("a[href]", "els => els.map(a => a.href.baseVal ?? a.href)")
        resources = page.eval_on_selector_all("script[src], link[href]", "els => els.map(e => e.src || e.href)")
        for ref in resources:
            assert ref.startswith("file://") and Path(unquote(urlsplit(ref).path)).is_file(), (url, ref)
        for href in hrefs:
            if href.startswith("mailto:"):
                continue
            target, fragment = urldefrag(href if href.startswith("file:") else _join(url, href))
            assert target.startswith("file://"), f"{url} links off the site: {href}"
            assert Path(unquote(urlsplit(target).path)).is_file(), f"{url}: broken link {href}"
            if fragment:
                anchors.append((url, target, fragment))
            if target.endswith(".html") and target not in seen:
                seen.add(target)
                queue.append(target)
    assert problems == []
    for url, target, fragment in anchors:
        assert fragment in ids[target], f"{url}: no #{fragment} on {target}"
    built = {p.resolve().as_uri() for p in site.rglob("*.html")}
    assert built == seen, f"pages no link reaches: {sorted(built - seen)}"


def _join(base: str, href: str) -> str:
    from urllib.parse import urljoin

    return urljoin(base, href)


def test_hostile_text_stays_text_in_the_browser(page, hostile: Path):
    site = hostile / "site"
    page.goto((site / "group" / "web.v1.html").as_uri())
    assert page.locator("p.description").inner_text() == HOSTILE
    assert page.locator("script").count() == 2  # the search index and the search code, nothing else
    page.locator("#search").fill("<script>")
    found = page.locator("#results li").all_inner_texts()
    assert any(HOSTILE in f for f in found)
    page.goto((site / "feature" / "web.v1.n_1d.html").as_uri())
    assert page.locator("b").count() == 0
    assert page.problems == []
