"""Projects at the edges: data that is partly missing, names that differ only in case, a
one-file project with Windows line ends, an empty source."""

from __future__ import annotations

import math
import re
import shutil
from pathlib import Path

import polars as pl
from click.testing import CliRunner
from sitehtml import read

from astra.catalog import build_site
from astra.catalog.model import page_urls
from astra.cli.main import cli
from astra.compiler import compile_project

ROOT = Path(__file__).resolve().parents[2]


def test_a_missing_source_file_leaves_its_groups_without_statistics(tmp_path: Path, demo_data: Path, example: Path):
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(demo_data / "profiles.parquet", data)  # no transactions.parquet
    out = tmp_path / "site"
    result = CliRunner().invoke(cli, ["docs", str(example), "--out", str(out), "--data-root", str(data)])
    assert result.exit_code == 0, result.output
    assert "note: statistics left out:" in result.output and "transactions" in result.output
    spend = read(out, "feature/user_spend.v1.tx_sum_7d.html").section("stats")
    assert "No statistics: the offline data could not be read" in spend and "does not exist" in spend
    assert "Null rate" in read(out, "feature/user_profile.v1.tier.html").section("stats")


def test_names_that_differ_only_in_case_get_distinct_files(tmp_path: Path):
    project = tmp_path / "p.feat"
    project.write_text('entity user { key id: int64 }\nentity User { key id: int64 }\n')
    plan = compile_project(project, lock="ignore").plan
    urls = page_urls(plan, {})
    pages = {urls["entity", "user"], urls["entity", "User"]}
    assert len({p.lower() for p in pages}) == 2
    build_site(project, tmp_path / "site")
    for p in pages:
        assert (tmp_path / "site" / p).is_file()


def test_a_one_file_project_with_crlf_line_ends(tmp_path: Path):
    text = ('entity user {\r\n    key user_id: int64\r\n}\r\n'
            'events clicks for user {\r\n    path "c.parquet"\r\n    time ts\r\n    columns { user_id: int64 }\r\n}\r\n'
            'features web v1 for user {\r\n    n: int64 = count(clicks, 1d)\r\n}\r\n')
    project = tmp_path / "one.feat"
    project.write_bytes(text.encode())
    pl.DataFrame({"user_id": pl.Series([], dtype=pl.Int64), "ts": pl.Series([], dtype=pl.Datetime("us"))}) \
        .write_parquet(tmp_path / "c.parquet")  # an empty source
    build_site(project, tmp_path / "site", data_root=tmp_path)
    raw = (tmp_path / "site" / "feature" / "web.v1.n.html").read_text()
    assert "\r" not in raw
    page = read(tmp_path / "site", "feature/web.v1.n.html")
    assert "n: int64 = count(clicks, 1d)" in page.section("source")
    assert "0.0% (0 of 0)" in page.section("stats")
    assert (tmp_path / "site" / "file" / "one.feat.html").is_file()


def test_nan_infinity_durations_timestamps_and_lists(tmp_path: Path):
    import numpy as np

    (tmp_path / "p.feat").write_text('''
entity user { key user_id: int64 }
events ev for user { path "ev.parquet" time ts columns { user_id: int64  x: float64? } }
features t v1 for user {
    x_last: float64? = last(ev.x)
    seen: timestamp? = last(ev.ts)
    since: duration? = now() - last(ev.ts)
    xs: list<float64> = last_k(ev.x, 3, 7d)
}
''')
    rng = np.random.default_rng(3)
    n = 300
    x = rng.normal(size=n)
    x[rng.random(n) < 0.1] = np.nan
    x[rng.random(n) < 0.1] = np.inf
    users = rng.integers(1, 6, n)
    ts = 1_700_000_000_000_000 + np.sort(rng.integers(0, 10**11, n))
    xs = pl.Series(x).set(pl.Series(rng.random(n) < 0.05), None)
    pl.DataFrame({"user_id": users, "x": xs, "ts": pl.Series(ts).cast(pl.Datetime("us"))}) \
        .write_parquet(tmp_path / "ev.parquet")
    build_site(tmp_path / "p.feat", tmp_path / "site", data_root=tmp_path)

    values = xs.to_list()
    last = []
    for i in range(n):  # the latest non-null x of the same user strictly before row i's time
        prior = [j for j in range(n) if users[j] == users[i] and ts[j] < ts[i] and values[j] is not None]
        last.append(values[max(prior, key=lambda j: (ts[j], j))] if prior else None)
    text = read(tmp_path / "site", "feature/t.v1.x_last.html").section("stats")
    assert f"({last.count(None)} of {n})" in text
    assert f"NaN {sum(1 for v in last if v is not None and v != v)} " in text
    assert f"Infinite {sum(1 for v in last if v is not None and abs(v) == float('inf'))} " in text
    finite = [v for v in last if v is not None and v == v and abs(v) != float("inf")]
    mean = float(re.search(r"Mean (\S+)", text).group(1).replace(",", ""))
    assert math.isclose(mean, sum(finite) / len(finite), rel_tol=1e-3, abs_tol=1e-4)

    since = read(tmp_path / "site", "feature/t.v1.since.html").section("stats")
    assert re.search(r"Min [\d,.]+ s Max [\d,.]+ s Mean [\d,.]+ s", since)
    seen = read(tmp_path / "site", "feature/t.v1.seen.html").section("stats")
    assert "Min 2023-11-14" in seen  # 1,700,000,000 s after the epoch is 2023-11-14T22:13:20
    assert "Null rate" in read(tmp_path / "site", "feature/t.v1.xs.html").section("stats")
