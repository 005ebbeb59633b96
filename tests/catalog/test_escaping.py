"""Everything the user wrote reaches the page as text: a description, owner, tag, deprecation
reason, string literal, comment or data value holding `<script>`, markup and both kinds of quote
is shown literally and never becomes markup."""

from __future__ import annotations

import json
import re
from pathlib import Path

from conftest import HOSTILE, HOSTILE_FEAT
from sitehtml import read

PAGES = ["index.html", "entity/user.html", "source/clicks.html", "request/ctx.html", "group/web.v1.html",
         "feature/web.v1.n_1d.html", "feature/web.v1.last_page.html", "feature/web.v1.echo.html",
         "service/s.v1.html"]


def test_no_page_holds_the_markup_raw(hostile: Path):
    site = hostile / "site"
    for page in sorted(site.rglob("*.html")):
        raw = page.read_text()
        assert "<script>alert" not in raw, page
        assert "<b>bold</b>" not in raw, page
        # the only script elements are the two the site ships
        assert re.findall(r"<script[^>]*>", raw) == [f'<script src="{p}search-index.js">' for p in ("../", "")
                                                     if f'src="{p}search-index.js"' in raw] + \
            [f'<script src="{p}static/search.js">' for p in ("../", "") if f'src="{p}static/search.js"' in raw], page


def test_every_text_is_shown_literally_where_it_belongs(hostile: Path):
    site = hostile / "site"
    for rel in PAGES:
        assert HOSTILE in read(site, rel).text, rel
    group = read(site, "group/web.v1.html").text
    assert f"Deprecated: {HOSTILE}" in group
    assert f"Owner {HOSTILE}" in group
    feature = read(site, "feature/web.v1.n_1d.html").text
    assert feature.count(HOSTILE) >= 3  # description, owner, tag, deprecation
    # the .feat text as written (escaped quotes and all), comment included
    source = read(site, "file/p.feat.html").text
    assert f"# a comment with {HOSTILE_FEAT}" in source and f'description "{HOSTILE_FEAT}"' in source


def test_what_changed_between_versions_is_escaped_too(hostile: Path):
    page = read(hostile / "site", "group/web.v2.html")
    versions = page.section("versions")
    assert f'description: "{HOSTILE}" -> "{HOSTILE} v2"' in versions  # the backticks mark code
    # a string literal in an expression, as the .feat text writes it
    assert f'n_1d: count(clicks, 1d) -> count(clicks where (page != "{HOSTILE_FEAT}"), 1d)' in versions


def test_attributes_cannot_be_broken_out_of(hostile: Path):
    site = hostile / "site"
    for page in sorted(site.rglob("*.html")):
        raw = page.read_text()
        for value in re.findall(r'(?:href|title|id)="([^"]*)"', raw):
            assert "<" not in value and '"' not in value, (page, value)
        assert "mailto:<" not in raw and "mailto:&lt;" not in raw  # an owner that is no address is not a link


def test_search_index_carries_the_text_as_data(hostile: Path):
    text = (hostile / "site" / "search-index.js").read_text()
    items = json.loads(re.fullmatch(r"window\.ASTRA_SEARCH = (.*);\n", text, re.S).group(1))
    group = next(i for i in items if i["kind"] == "group")
    assert group["description"] == HOSTILE and group["owner"] == HOSTILE and HOSTILE in group["tags"]
    assert text.isascii()  # no raw line separators (U+2028) or other characters a script could trip on


def test_statistics_of_a_hostile_value(hostile: Path):
    page = read(hostile / "site", "feature/web.v1.last_page.html")
    assert any(t.startswith(HOSTILE[:20]) for t in page.titles)  # the most frequent values, as text
