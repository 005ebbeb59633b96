"""The catalog says what the project defines: expectations here are read off the example
project's `.feat` files and `astra.lock` (or computed from the demo data by plain Python), never
from rendered output.  Pages are at `KIND/NAME.html`, versions as `.vN` (docs/catalog.md)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from sitehtml import read

from astra.compiler import compile_project


def fpage(fid: str) -> str:
    """`user_spend@v1.tx_sum_7d` -> its page."""
    group, _, rest = fid.partition("@v")
    version, _, name = rest.partition(".")
    return f"feature/{group}.v{version}.{name}.html"


def test_every_definition_has_a_page_reachable_from_the_index(site: Path, example: Path):
    plan = compile_project(example, lock="ignore").plan
    index = read(site, "index.html")
    expected = ([f"entity/{e.name}.html" for e in plan.entities] + [f"source/{s.name}.html" for s in plan.sources]
                + [f"request/{r.name}.html" for r in plan.requests]
                + [f"group/{g.name}.v{g.version}.html" for g in plan.groups]
                + [f"service/{s.name}.v{s.version}.html" for s in plan.services])
    for page in expected:
        assert (site / page).is_file(), page
        assert page in index.links, f"index does not link {page}"
    for f in plan.features:
        assert (site / fpage(f.id)).is_file(), f.id
        group = read(site, f"group/{f.group}.v{f.version}.html")
        assert f"../{fpage(f.id)}" in group.links


# (feature, type, nullable, window, owner, tags), as written in features/*.feat
CASES = [
    ("user_spend@v1.tx_mean_7d", "float64?", True, "[t - 7d, t)", "risk@example.com", ["risk", "spend"]),
    ("user_spend@v1.tx_count_1h", "int64", False, "[t - 1h, t)", "risk@example.com", ["risk", "spend"]),
    # reads tx_sum_1d and tx_sum_30d: the widest window is its own
    ("user_spend@v1.spend_ratio_1d_30d", "float64?", True, "[t - 30d, t)", "risk@example.com", ["risk", "spend"]),
    ("user_spend@v1.last_category", "string?", True, "(-inf, t)", "risk@example.com", ["risk", "spend"]),
    ("user_profile@v1.country", "string?", True, "(-inf, t)", "risk@example.com", []),  # an as-of lookup
    ("user_profile@v2.tier", "int32", False, "(-inf, t)", "risk@example.com", []),
    ("merchant_activity@v1.customers_7d", "int64", False, "[t - 7d, t)", "merchant-risk@example.com", ["merchant"]),
    ("checkout_features@v1.is_web", "bool", False, "request inputs at t", "risk@example.com", []),
    ("checkout_features@v1.amount_vs_mean_30d", "float64?", True, "[t - 30d, t) and request inputs at t",
     "risk@example.com", []),
]


@pytest.mark.parametrize(("fid", "type_", "nullable", "window", "owner", "tags"), CASES, ids=[c[0] for c in CASES])
def test_feature_page_states_type_window_owner_and_tags(site, fid, type_, nullable, window, owner, tags):
    page = read(site, fpage(fid))
    head = page.text.split("Statistics")[0]
    assert f"Type {type_}" in head
    assert ("the value may be null" in head) is nullable
    assert ("never null" in head) is (not nullable)
    assert f"Window {window} " in head
    assert f"Owner {owner}" in head
    for t in tags:
        assert f" {t} " in head.split("Tags", 1)[1].split("Entity")[0]
    assert f"Entity {ENTITY[fid.split('@')[0]]} " in head


ENTITY = {"user_spend": "user", "user_profile": "user", "merchant_activity": "merchant", "checkout_features": "user"}


def test_a_default_is_shown(site: Path):
    page = read(site, fpage("user_spend@v2.big_share_7d"))  # `big_tx_7d / tx_count_7d default 0.0`
    assert "Default 0.0 replaces a null result" in page.text
    assert "Type float64 " in page.text


def test_fingerprints_are_those_recorded_in_the_lock(site: Path, example: Path):
    lock = json.loads((example / "astra.lock").read_text())["groups"]
    assert lock
    for gid, entry in lock.items():
        name, _, version = gid.partition("@v")
        group = read(site, f"group/{name}.v{version}.html")
        assert f"data {entry['data']}, metadata {entry['meta']}" in group.text
        assert "Status released" in group.text
        for fname, f in entry["features"].items():
            page = read(site, fpage(f"{gid}.{fname}"))
            assert f"Fingerprint {f['fingerprint']}" in page.text, (gid, fname)


def test_versions_say_what_changed(site: Path):
    v2 = read(site, "group/user_spend.v2.html").section("versions")
    assert "v1" in v2 and "v2" in v2
    assert "added tx_min_7d" in v2 and "added big_share_7d" in v2
    assert "removed tx_count_1h" in v2 and "removed spend_ratio_1d_30d" in v2
    assert "description: \"Card spend over sliding windows\" -> \"Card spend over sliding windows, with spread " \
           "and recency\"" in v2
    profile = read(site, "group/user_profile.v2.html")
    versions = profile.section("versions")
    assert "country: type string? -> string" in versions
    assert "added is_premium" in versions and "removed credit_limit" in versions
    assert "tier: default none -> 0" in versions
    assert "Deprecated: v2 guessed a default country; use v1 and handle nulls in the model" in profile.text
    # the same feature in two versions with the same logic
    count = read(site, fpage("user_spend@v2.tx_count_7d")).section("versions")
    assert re.search(r"v1 \w+ released first version v2 \w+ released same logic", count), count
    svc = read(site, "service/fraud_model.v2.html").section("versions")
    assert "accepts request checkout" in svc
    assert "tx_count_7d reads user_spend@v2.tx_count_7d instead of user_spend@v1.tx_count_7d" in svc


def test_lineage_is_the_upstream_and_downstream_of_the_page(site: Path):
    # spend_ratio_1d_30d = tx_sum_1d / tx_sum_30d, both sums of transactions.amount; fraud_model v1 returns it
    page = read(site, fpage("user_spend@v1.spend_ratio_1d_30d"))
    graph = page.links
    svg_titles = " | ".join(page.titles)
    for node in ("column: transactions.amount", "feature: user_spend@v1.tx_sum_1d",
                 "feature: user_spend@v1.tx_sum_30d", "service: fraud_model@v1",
                 "feature: user_spend@v1.spend_ratio_1d_30d"):
        assert node in svg_titles
    assert "tx_count_7d" not in svg_titles  # neither upstream nor downstream
    assert "../" + fpage("user_spend@v1.tx_sum_1d") in graph
    assert "../source/transactions.html#col-amount" in graph
    # a request field's page draws the features reading it and their services
    req = read(site, "request/checkout.html")
    titles = " | ".join(req.titles)
    assert "feature: checkout_features@v1.is_web" in titles and "service: fraud_model@v2" in titles


def test_feat_source_is_shown_with_names_linked(site: Path):
    page = read(site, fpage("user_spend@v1.spend_ratio_1d_30d"))
    assert "spend_ratio_1d_30d: float64? = tx_sum_1d / tx_sum_30d" in page.section("source")
    for fid in ("user_spend@v1.tx_sum_1d", "user_spend@v1.tx_sum_30d"):
        assert "../" + fpage(fid) in page.links
    service = read(site, "service/fraud_model.v2.html")
    assert "../request/checkout.html" in service.links  # `request checkout`
    assert "../group/user_spend.v2.html" in service.links  # `user_spend@v2.*`
    whole = read(site, "file/services.feat.html")
    assert {f"L{i}" for i in range(1, 10)} <= whole.ids
    where = read(site, fpage("user_spend@v2.big_tx_7d"))  # `where amount > 100.0`: a column of transactions
    assert where.links.count("../source/transactions.html#col-amount") >= 1


def test_search_index_holds_every_definition_with_its_metadata(site: Path, example: Path):
    text = (site / "search-index.js").read_text()
    m = re.fullmatch(r"window\.ASTRA_SEARCH = (.*);\n", text, re.S)
    assert m, "the index is a script assigning one global"
    items = json.loads(m.group(1))
    by = {(i["kind"], i["name"]): i for i in items}
    plan = compile_project(example, lock="ignore").plan
    assert len(by) == len(plan.entities) + len(plan.sources) + len(plan.requests) + len(plan.groups) \
        + len(plan.features) + len(plan.services)
    merchant = by["feature", "merchant_activity@v1.customers_7d"]
    assert merchant["owner"] == "merchant-risk@example.com" and merchant["tags"] == ["merchant"]
    assert by["group", "user_spend@v1"]["description"] == "Card spend over sliding windows"
    assert by["source", "transactions"]["owner"] == "payments-data@example.com"
    for item in items:
        assert (site / item["url"]).is_file()
