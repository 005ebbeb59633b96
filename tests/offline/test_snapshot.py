"""Snapshot-mode backfill (`astra backfill --every`): one row per (entity key, snapshot time), the
population of docs/semantics.md ("Snapshot mode"), and the same values as a spine backfill."""

from __future__ import annotations

import tempfile
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from astra.cli.main import cli
from astra.compiler import compile_project
from astra.offline import BackfillError, backfill, snapshot
from astra.plan import ir

S = 1_000_000  # µs per second

# Two entities keyed by `driver_id` (one column in a spine), and a city entity with its own key.
PROJECT = """
entity driver { key driver_id: int64 }
entity rated_driver { key driver_id: int64 }
entity city { key city_id: int64 }
events trips for driver { path "trips.parquet" time ts columns { driver_id: int64?  fare: float64? } }
events ratings for rated_driver { path "ratings.parquet" time ts columns { driver_id: int64?  stars: int64? } }
events weather for city { path "weather.parquet" time ts columns { city_id: int64?  temp: float64? } }
features d v1 for driver { trips_3s: int64 = count(trips, 3s)  fare_sum: float64 = sum(trips.fare) }
features r v1 for rated_driver { n_ratings: int64 = count(ratings) }
features c v1 for city { last_temp: float64? = last(weather.temp) }
service drivers v1 { d@v1.*  r@v1.* }
service with_city v1 { d@v1.*  c@v1.* }
"""
TABLES = {"trips": ("driver_id", pl.Float64, "fare"), "ratings": ("driver_id", pl.Int64, "stars"),
          "weather": ("city_id", pl.Float64, "temp")}


def make_project(root: Path) -> ir.Plan:
    (root / "p.feat").write_text(PROJECT)
    result = compile_project(root, lock="ignore")
    assert result.ok, result.diagnostics
    return result.plan


def write(root: Path, tables: dict[str, list[tuple]]) -> None:
    """Rows (key, time in s, value) per source; None for a null key or time."""
    for name, (key, dtype, value) in TABLES.items():
        rows = tables.get(name, [])
        pl.DataFrame({key: pl.Series([r[0] for r in rows], dtype=pl.Int64),
                      "ts": pl.Series([None if r[1] is None else r[1] * S for r in rows], dtype=pl.Int64)
                      .cast(pl.Datetime("us")),
                      value: pl.Series([r[2] for r in rows], dtype=dtype)}).write_parquet(root / f"{name}.parquet")


def expected_population(tables: dict[str, list[tuple]], sources: tuple[str, ...], t: int) -> set:
    """The documented rule: keys with a row (non-null key and time) before t in a source read."""
    return {r[0] for s in sources for r in tables.get(s, []) if r[0] is not None and r[1] is not None and r[1] * S < t}


def test_two_entities_with_one_key_name_give_one_row_per_key_and_time(tmp_path):
    plan = make_project(tmp_path)
    # driver 1 on trips and ratings, 2 only on trips, 3 only on ratings, 4 first seen at 20 s
    write(tmp_path, {"trips": [(1, 1, 5.0), (2, 2, 7.0), (1, 12, 1.0), (4, 20, 2.0)],
                     "ratings": [(1, 3, 5), (3, 4, 4), (None, 5, 1)]})
    out = snapshot(plan, "drivers", 1, tmp_path, every=10 * S, start=10 * S, end=20 * S)
    assert out.columns == ["driver_id", "ts", "trips_3s", "fare_sum", "n_ratings"]
    # at 10 s: drivers 1, 2, 3; at 20 s the same (driver 4's first row is at exactly 20 s: not yet)
    assert out["driver_id"].to_list() == [1, 2, 3, 1, 2, 3]
    assert out["ts"].dt.epoch("us").to_list() == [10 * S] * 3 + [20 * S] * 3
    assert out["fare_sum"].to_list() == [5.0, 7.0, 0.0, 6.0, 7.0, 0.0]
    assert out["n_ratings"].to_list() == [1, 0, 1, 1, 0, 1]
    assert out["trips_3s"].to_list() == [0, 0, 0, 0, 0, 0]


def test_entities_with_other_key_names_multiply(tmp_path):
    plan = make_project(tmp_path)
    write(tmp_path, {"trips": [(1, 1, 5.0), (2, 6, 7.0)], "weather": [(10, 2, 20.5), (11, 8, 18.0)]})
    out = snapshot(plan, "with_city", 1, tmp_path, every=5 * S, start=5 * S, end=10 * S)
    assert out.columns == ["driver_id", "city_id", "ts", "trips_3s", "fare_sum", "last_temp"]
    # at 5 s: driver 1 x city 10; at 10 s: drivers 1, 2 x cities 10, 11
    assert out.select("driver_id", "city_id").rows() == [(1, 10), (1, 10), (1, 11), (2, 10), (2, 11)]
    assert out["last_temp"].to_list() == [20.5, 20.5, 18.0, 20.5, 18.0]


def test_a_schedule_before_any_row_is_empty_and_a_bad_schedule_is_an_error(tmp_path):
    plan = make_project(tmp_path)
    write(tmp_path, {"trips": [(1, 50, 5.0)], "ratings": [(1, 60, 1)]})
    out = snapshot(plan, "drivers", 1, tmp_path, every=S, start=0, end=3 * S)
    assert out.height == 0 and out.columns == ["driver_id", "ts", "trips_3s", "fare_sum", "n_ratings"]
    with pytest.raises(BackfillError, match="empty schedule"):
        snapshot(plan, "drivers", 1, tmp_path, every=0, start=0, end=3 * S)


rows = st.lists(st.tuples(st.one_of(st.none(), st.integers(1, 6)), st.one_of(st.none(), st.integers(0, 12)),
                          st.integers(0, 9)), max_size=12)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(trips=rows, ratings=rows, weather=rows, start=st.integers(-2, 10), every=st.integers(1, 5),
       count=st.integers(1, 4), service=st.sampled_from(["drivers", "with_city"]))
def test_snapshot_equals_a_spine_backfill_over_the_documented_population(trips, ratings, weather, start, every,
                                                                        count, service):
    tables = {"trips": [(k, t, float(v)) for k, t, v in trips], "ratings": list(ratings),
              "weather": [(k, t, float(v)) for k, t, v in weather]}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        plan = make_project(root)
        write(root, tables)
        times = [(start + i * every) * S for i in range(count)]
        out = snapshot(plan, service, 1, root, every=every * S, start=times[0], end=times[-1])
        spine = []
        for t in times:
            if service == "drivers":
                spine += [dict(driver_id=d, ts=t) for d in sorted(expected_population(tables, ("trips", "ratings"), t))]
            else:
                spine += [dict(driver_id=d, city_id=c, ts=t)
                          for d in sorted(expected_population(tables, ("trips",), t))
                          for c in sorted(expected_population(tables, ("weather",), t))]
        keys = ["driver_id"] if service == "drivers" else ["driver_id", "city_id"]
        frame = pl.DataFrame(spine, schema={**{k: pl.Int64 for k in keys}, "ts": pl.Int64})
        frame = frame.with_columns(pl.col("ts").cast(pl.Datetime("us")))
        want = backfill(plan, service, 1, frame, root)
    assert out.equals(want), (out, want)


def test_cli_snapshot_mode(tmp_path):
    plan = make_project(tmp_path)
    assert plan is not None
    write(tmp_path, {"trips": [(1, 1, 5.0)], "ratings": [(1, 3, 5), (2, 4, 1)]})
    out = tmp_path / "out.parquet"
    runner = CliRunner()
    res = runner.invoke(cli, ["backfill", str(tmp_path), "--service", "drivers@v1", "--every", "5s",
                              "--start", "5000000", "--end", "10000000", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert pl.read_parquet(out).select("driver_id", "n_ratings").rows() == [(1, 1), (2, 1), (1, 1), (2, 1)]
    for bad in (["--every", "soon"], ["--every", "0s"], ["--every", "1us", "--end", "99999999999999"]):
        args = ["backfill", str(tmp_path), "--service", "drivers@v1", "--every", "5s", "--start", "0",
                "--end", "10", "--out", str(out)]
        for flag, value in zip(bad[::2], bad[1::2]):
            args[args.index(flag) + 1] = value
        res = runner.invoke(cli, args)
        assert (res.exit_code != 0 and res.exception is None) or isinstance(res.exception, SystemExit), res.output
        assert "Traceback" not in res.output
