"""Feature statistics against plain Python: the documented spine (every row of the source the
group reads, each queried at its own time, strictly-before visibility) recomputed by brute force
over the demo data."""

from __future__ import annotations

import datetime as dt
import math
import re
from pathlib import Path

import polars as pl
from sitehtml import read

US = 1_000_000
HOUR, DAY = 3600 * US, 86400 * US


def _spine_and_rows(demo_data: Path):
    tx = pl.read_parquet(demo_data / "transactions.parquet")
    ts = [int(t.replace(tzinfo=dt.UTC).timestamp() * US) if isinstance(t, dt.datetime) else t
          for t in tx["ts"].to_list()]
    rows = list(zip(tx["user_id"].to_list(), ts, tx["amount"].to_list(), strict=True))
    by_user: dict[int, list[tuple[int, float | None]]] = {}
    for u, t, a in rows:
        by_user.setdefault(u, []).append((t, a))
    return rows, by_user


def _stats_section(site: Path, page: str) -> dict[str, str]:
    text = read(site, page).section("stats")
    out = {}
    for key in ("Null rate", "Distinct", "Min", "Max", "Mean"):
        m = re.search(rf"{key} (\S+)", text)
        if m:
            out[key] = m.group(1)
    m = re.search(r"\(([\d,]+) of ([\d,]+)\)", text)
    out["nulls"], out["rows"] = (int(m.group(1).replace(",", "")), int(m.group(2).replace(",", ""))) if m \
        else (None, None)
    return out


def _num(text: str) -> float:
    return float(text.replace(",", ""))


def test_count_and_max_over_the_sources_own_rows(site: Path, demo_data: Path):
    rows, by_user = _spine_and_rows(demo_data)
    counts, maxima = [], []
    for u, t, _ in rows:  # the spine: each transaction's user at the transaction's time
        seen = [(s, a) for s, a in by_user[u] if t - DAY <= s < t]
        counts.append(len(seen))
        values = [a for _, a in seen if a is not None]
        maxima.append(max(values) if values else None)

    got = _stats_section(site, "feature/user_spend.v1.tx_count_1d.html")
    assert got["rows"] == len(rows) and got["nulls"] == 0
    assert _num(got["Min"]) == min(counts) and _num(got["Max"]) == max(counts)
    assert math.isclose(_num(got["Mean"]), sum(counts) / len(counts), rel_tol=1e-3)
    assert int(got["Distinct"].replace(",", "")) == len(set(counts))

    got = _stats_section(site, "feature/user_spend.v1.tx_max_1d.html")
    present = [m for m in maxima if m is not None]
    assert got["nulls"] == maxima.count(None) and got["rows"] == len(rows)
    assert _num(got["Min"]) == min(present) and _num(got["Max"]) == max(present)
    assert int(got["Distinct"].replace(",", "")) == len(set(present))


def test_histogram_counts_every_non_null_value(site: Path, demo_data: Path):
    page = read(site, "feature/user_spend.v1.tx_mean_1h.html")
    got = _stats_section(site, "feature/user_spend.v1.tx_mean_1h.html")
    bars = [t for t in page.titles if re.match(r"^\[.*\]?\)?: [\d,]+$", t)]
    assert len(bars) == 20
    total = sum(int(t.rsplit(": ", 1)[1].replace(",", "")) for t in bars)
    assert total == got["rows"] - got["nulls"]


def test_string_feature_shows_its_most_frequent_values(site: Path, demo_data: Path):
    page = read(site, "feature/user_spend.v1.last_category.html")
    assert "Distinct 12" in page.section("stats")  # the demo draws 12 categories, cat_00..cat_11
    assert any(t.startswith("cat_") for t in page.titles)


def test_request_features_say_why_they_have_no_statistics(site: Path):
    text = read(site, "feature/checkout_features.v1.is_web.html").section("stats")
    assert "No statistics: it reads request input checkout.channel, which only callers supply" in text
