"""`astra ls` and `astra show`: what a project defines, as its `.feat` text says.

Every expectation below is read off the `.feat` text written here (or the example project's
files), or off `astra.lock` for fingerprints, never off the commands' own output.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SHOP = """\
entity shopper {
    owner "crm@example.org"
    description "A person who visits"
    tags ["people"]

    key shopper_id: int64
}

events visits for shopper {
    owner "web@example.org"
    description "Page visits"
    tags ["web"]

    path "visits.parquet"
    time ts
    columns {
        shopper_id: int64
        pages: int64
    }
}

request ctx {
    device: string?
}

features activity v1 for shopper {
    owner "Growth@example.org"
    description "How active a shopper is"
    tags ["growth", "web"]

    visits_7d: int64 = count(visits, 7d)
    mean_pages_30d: float64? = mean(visits.pages, 30d) description "Pages per visit"
    busy: bool = visits_7d > 3
}

features activity v2 for shopper {
    owner "growth@example.org"
    deprecated "use v1: v2 counted bots"

    visits_7d: int64 = count(visits, 14d)
}

service model v1 {
    owner "ml@example.org"

    request ctx
    activity@v1.visits_7d
    activity@v1.busy as is_busy
}
"""


def astra(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "astra.cli.main", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("shop")
    (root / "shop.feat").write_text(SHOP)
    assert astra("compile", "--lock", ".", cwd=root).returncode == 0  # releases both versions
    return root


def ls(shop: Path, *args: str) -> list[dict]:
    r = astra("ls", ".", "--format", "json", *args, cwd=shop)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def names(found: list[dict]) -> list[tuple[str, str]]:
    return sorted((r["kind"], r["name"]) for r in found)


def test_ls_lists_every_definition_of_the_text(shop: Path) -> None:
    want = [("entity", "shopper"), ("source", "visits"), ("request", "ctx"), ("group", "activity@v1"),
            ("group", "activity@v2"), ("feature", "activity@v1.visits_7d"), ("feature", "activity@v1.mean_pages_30d"),
            ("feature", "activity@v1.busy"), ("feature", "activity@v2.visits_7d"), ("service", "model@v1")]
    assert names(ls(shop)) == sorted(want)
    text = astra("ls", ".", cwd=shop)
    assert text.returncode == 0, text.stderr
    for _, name in want:
        assert re.search(rf"^  {re.escape(name)}\s", text.stdout, re.M), name
    for heading in ("entities (1)", "sources (1)", "requests (1)", "feature groups (2)", "features (4)",
                    "services (1)"):
        assert f"\n{heading}\n" in f"\n{text.stdout}", heading


def test_ls_filters_by_kind_owner_tag_and_deprecation(shop: Path) -> None:
    assert names(ls(shop, "--kind", "entity", "--kind", "service")) == [("entity", "shopper"), ("service", "model@v1")]
    # owner: any case, part of it; features have their group's owner
    assert names(ls(shop, "--owner", "GROWTH", "--kind", "group")) == [("group", "activity@v1"),
                                                                       ("group", "activity@v2")]
    assert ("feature", "activity@v2.visits_7d") in names(ls(shop, "--owner", "growth@"))
    assert names(ls(shop, "--owner", "crm")) == [("entity", "shopper")]
    # tags, also on entities and sources (the plan keeps them only for groups); several must all hold
    assert names(ls(shop, "--tag", "people")) == [("entity", "shopper")]
    assert names(ls(shop, "--tag", "web", "--kind", "source", "--kind", "group")) == [("group", "activity@v1"),
                                                                                  ("source", "visits")]
    assert names(ls(shop, "--tag", "web", "--tag", "growth", "--kind", "feature")) == [
        ("feature", "activity@v1.busy"), ("feature", "activity@v1.mean_pages_30d"),
        ("feature", "activity@v1.visits_7d")]
    assert names(ls(shop, "--deprecated")) == [("feature", "activity@v2.visits_7d"), ("group", "activity@v2")]
    assert ls(shop, "--tag", "nosuch") == []
    r = astra("ls", ".", "--tag", "nosuch", cwd=shop)
    assert r.returncode == 0 and r.stdout == "" and "nothing matches" in r.stderr


def test_show_a_feature_type_nullability_window_and_metadata(shop: Path) -> None:
    r = astra("show", "mean_pages_30d", ".", "--format", "json", cwd=shop)
    assert r.returncode == 0, r.stderr
    [f] = json.loads(r.stdout)
    assert (f["kind"], f["name"], f["type"], f["nullable"]) == ("feature", "activity@v1.mean_pages_30d", "float64?",
                                                               True)
    assert f["windows"] == ["[t - 30d, t) of visits"]
    assert (f["owner"], f["tags"], f["description"]) == ("Growth@example.org", ["growth", "web"], "Pages per visit")
    assert f["served_by"] == [] and f["reads"] == ["visits"] and f["entity"] == "shopper"
    [busy] = json.loads(astra("show", "activity.busy", ".", "--format", "json", cwd=shop).stdout)
    assert busy["nullable"] is False and busy["depends_on"] == ["activity@v1.visits_7d"]
    assert busy["windows"] == ["[t - 7d, t) of visits"]  # effective: through the feature it reads
    assert busy["served_by"] == ["model@v1"]
    text = astra("show", "activity@v1.mean_pages_30d", ".", cwd=shop).stdout
    assert "float64? (nullable" in text and "[t - 30d, t)" in text and "shop.feat:" in text


def test_show_each_version_with_the_fingerprints_of_the_lock(shop: Path) -> None:
    lock = json.loads((shop / "astra.lock").read_text())["groups"]
    r = astra("show", "activity", ".", "--format", "json", cwd=shop)
    found = json.loads(r.stdout)
    groups = [g for g in found if g["kind"] == "group"]
    assert [g["name"] for g in groups] == ["activity@v1", "activity@v2"]
    for g in groups:
        assert g["fingerprints"]["data"] == lock[g["name"]]["data"]
        assert g["fingerprints"]["metadata"] == lock[g["name"]]["meta"]
    assert groups[1]["deprecated"] == "use v1: v2 counted bots" and groups[0]["deprecated"] is None
    [v1_feature] = json.loads(astra("show", "activity@v1.visits_7d", ".", "--format", "json", cwd=shop).stdout)
    assert v1_feature["fingerprint"] == lock["activity@v1"]["features"]["visits_7d"]["fingerprint"]
    assert {v["feature"] for v in v1_feature["versions"]} == {"activity@v1.visits_7d", "activity@v2.visits_7d"}
    [v2] = json.loads(astra("show", "activity@v2", ".", "--format", "json", cwd=shop).stdout)
    assert v2["features"] == ["visits_7d"]
    [svc] = json.loads(astra("show", "model@v1", ".", "--format", "json", cwd=shop).stdout)
    assert [o["name"] for o in svc["outputs"]] == ["visits_7d", "is_busy"]
    assert [o["type"] for o in svc["outputs"]] == ["int64", "bool"]
    assert svc["keys"] == ["shopper_id"] and svc["requests"] == ["ctx"]


def test_show_entity_source_and_request(shop: Path) -> None:
    [e] = json.loads(astra("show", "shopper", ".", "--format", "json", cwd=shop).stdout)
    assert e["keys"] == [{"name": "shopper_id", "type": "int64"}] and e["tags"] == ["people"]
    [s] = json.loads(astra("show", "visits", ".", "--format", "json", cwd=shop).stdout)
    assert (s["source_kind"], s["path"], s["time"]) == ("events", "visits.parquet", "ts")
    assert {c["name"]: c["type"] for c in s["columns"]}.items() >= {"shopper_id": "int64", "pages": "int64"}.items()
    [q] = json.loads(astra("show", "ctx", ".", "--format", "json", cwd=shop).stdout)
    assert q["fields"] == [{"name": "device", "type": "string?"}] and q["services"] == ["model@v1"]


@pytest.mark.parametrize(("name", "words"), [
    ("actvity", "did you mean `activity`?"),
    ("activity@v3", "versions: v1, v2"),
    ("activity.visits_8d", "did you mean `activity.visits_7d`?"),
    ("activity@v1.bussy", "did you mean `activity@v1.busy`?"),
    ("zzzz", "nothing named `zzzz`"),
    ("activity@2", "write `activity@vN`; versions: v1, v2"),
    ("bad\nname", "nothing named `bad\\nname`"),  # one line, whatever was typed
])
def test_unknown_names_get_one_line_and_the_closest_name(shop: Path, name: str, words: str) -> None:
    r = astra("show", name, ".", cwd=shop)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 1 and r.stdout == ""
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], r.stderr


def test_usage_and_project_errors(shop: Path, tmp_path: Path) -> None:
    r = astra("show", cwd=shop)
    assert r.returncode == 2 and r.stderr.startswith("error: ")
    r = astra("ls", ".", "--kind", "table", cwd=shop)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    (tmp_path / "broken.feat").write_text("entity x {\n    key id: int64\n")
    r = astra("ls", ".", cwd=tmp_path)
    assert r.returncode == 1 and "error[E" in r.stderr and "Traceback" not in r.stderr


def test_the_example_projects_tags_as_written() -> None:
    """`ls --tag spend` lists exactly the group versions whose text declares that tag."""
    text = "\n".join(p.read_text() for p in sorted((ROOT / "features").rglob("*.feat")))
    tagged = sorted(f"{m[1]}@{m[2]}" for m in re.finditer(r"features (\w+) (v\d+) for \w+ \{([^}]*)\}", text)
                    if re.search(r'tags \[[^\]]*"spend"', m[3]))
    assert tagged
    r = astra("ls", "--tag", "spend", "--kind", "group", "--format", "json", cwd=ROOT)
    assert [g["name"] for g in json.loads(r.stdout)] == tagged


def test_changed_logic_under_a_released_version_is_refused_unless_allowed(shop: Path, tmp_path: Path) -> None:
    """docs/cli.md, `astra.lock` in every command: ls and show build the plan, so they refuse a
    released version whose logic changed (E0601, exit 1) and describe it with --allow-unlocked."""
    import shutil

    changed = tmp_path / "changed"
    shutil.copytree(shop, changed)
    feat = next(p for p in changed.glob("*.feat") if "count(visits, 7d)" in p.read_text())
    feat.write_text(feat.read_text().replace("count(visits, 7d)", "count(visits, 8d)"))
    for args in (["ls", "."], ["show", "activity@v1", "."]):
        r = astra(*args, cwd=changed)
        assert r.returncode == 1 and "error[E0601]" in r.stderr and "Traceback" not in r.stderr, r.stderr
        r = astra(*args, "--allow-unlocked", "--format", "json", cwd=changed)
        assert r.returncode == 0, r.stderr
        assert any(d["kind"] == "group" and d["name"] == "activity@v1" for d in json.loads(r.stdout))
