"""The Python API (`import astra`): what it exposes, the times it accepts, the frames it returns,
snapshot mode, and errors that speak Python rather than the command line."""

from __future__ import annotations

import datetime as dt
import inspect
import re
import shutil
from pathlib import Path

import polars as pl
import pytest

import astra
from astra.offline import snapshot as offline_snapshot

FEATURES = Path(__file__).resolve().parents[1] / "features"
AT = dt.datetime(2026, 3, 20, 12, 0)  # inside the demo data's 60 days
US = 1_000_000
CLI_ADVICE = re.compile(r"(^|\s|\()--[a-z]|re-run|`astra [a-z]+")


@pytest.fixture(scope="module")
def demo(small_demo) -> Path:
    return small_demo


@pytest.fixture(scope="module")
def project(example_project) -> astra.Project:
    return example_project


@pytest.fixture(scope="module")
def store(project, demo):
    st = astra.Store(project.plan)
    st.materialize(demo)
    return st


def _micros(t: dt.datetime) -> int:
    return (t - dt.datetime(1970, 1, 1)) // dt.timedelta(microseconds=1)


def test_dir_lists_the_public_api_with_docstrings():
    for name in ("Project", "ProjectError", "Store", "Result", "BackfillError", "OnlineError", "HorizonError"):
        assert name in astra.__all__ and name in dir(astra)
    for name in astra.__all__:
        obj = getattr(astra, name)
        assert (obj.__doc__ or "").strip(), name
        if not inspect.isclass(obj):
            continue
        for attr, value in vars(obj).items():
            if attr.startswith("_"):
                continue
            fn = value.fget if isinstance(value, property) else getattr(value, "__func__", value)
            if callable(fn):
                assert (fn.__doc__ or "").strip(), f"{name}.{attr} has no docstring"
    with pytest.raises(AttributeError):
        astra.nothing_here  # noqa: B018


def test_get_accepts_datetimes_like_integers(store):
    svc, ents = "fraud_model@v1", [{"user_id": u} for u in (1, 2, 3, 10**9)]
    want = store.get(svc, ents, at=_micros(AT)).rows()
    assert store.get(svc, ents, at=AT).rows() == want
    assert store.get(svc, ents, at=AT.replace(tzinfo=dt.UTC)).rows() == want
    tz = dt.timezone(dt.timedelta(hours=2))
    assert store.get(svc, ents, at=(AT + dt.timedelta(hours=2)).replace(tzinfo=tz)).rows() == want
    assert store.get(svc, ents, at=[AT] * 4).rows() == want
    assert store.get(svc, ents, at=pl.Series([AT] * 4)).rows() == want
    times = [AT - dt.timedelta(days=d) for d in range(4)]
    per_entity = store.get(svc, ents, at=times).rows()
    assert per_entity == store.get(svc, ents, at=[_micros(t) for t in times]).rows()
    assert per_entity[1] == store.get(svc, ents[1:2], at=times[1]).rows()[0]
    with pytest.raises(TypeError, match="at: expected a datetime"):
        store.get(svc, ents, at=1.5)


def test_project_store_is_materialized(project, demo, store):
    ents = [{"user_id": u} for u in (1, 2, 3)]
    mine = project.store(data_root=demo, services=["fraud_model@v1"], allowed_lateness=dt.timedelta(hours=1))
    assert mine.allowed_lateness == 3600 * US
    assert mine.get("fraud_model@v1", ents, at=AT).rows() == store.get("fraud_model@v1", ents, at=_micros(AT)).rows()


def test_to_polars_starts_with_the_entity_keys(store):
    ents = [{"user_id": 1, "merchant_id": 2}, {"user_id": 3, "merchant_id": 4}]
    res = store.get("fraud_model@v2", ents, at=_micros(AT), request={"amount": 12.5})
    df = res.to_polars()
    assert df.columns[:2] == ["user_id", "merchant_id"]
    assert df.schema["user_id"] == pl.Int64 and df.schema["merchant_id"] == pl.Int64
    assert df["user_id"].to_list() == [1, 3] and df["merchant_id"].to_list() == [2, 4]
    assert df.columns[2:] == [name for name, _ in res.types] + ["_missing"]
    wide = store.get("fraud_model@v2", ents * 8, at=_micros(AT), request={"amount": 12.5}).to_polars()
    assert wide.head(2).equals(df)  # 16 entities: the vectorised plan, the same frame


def test_snapshot_from_python_equals_the_engine_entry_point(project, demo):
    start, end = dt.datetime(2026, 3, 10), dt.datetime(2026, 3, 12)
    want = offline_snapshot(project.plan, "profile_lookup", 1, demo, 86_400 * US, _micros(start), _micros(end))
    assert want.height > 0
    got = project.snapshot(service="profile_lookup@v1", every=dt.timedelta(days=1), start=start, end=end,
                           data_root=demo)
    assert got.equals(want)
    assert project.snapshot(service="profile_lookup@v1", every="1d", start="2026-03-10", end=dt.date(2026, 3, 12),
                            data_root=demo).equals(want)
    with pytest.raises(ValueError, match="every: `daily` is not a duration"):
        project.snapshot(service="profile_lookup@v1", every="daily", start=start, end=end, data_root=demo)


def test_errors_speak_python(project, demo, store, tmp_path):
    spine = pl.DataFrame({"user_id": [1], "when": [AT]})
    with pytest.raises(astra.BackfillError) as err:
        project.backfill(spine, service="fraud_model@v1", data_root=demo)
    assert "time_column=" in str(err.value) and not CLI_ADVICE.search(str(err.value)), str(err.value)
    assert project.backfill(spine, service="fraud_model@v1", data_root=demo, time_column="when").height == 1

    shutil.copytree(FEATURES / "common", tmp_path / "common")
    other = astra.Store(astra.Project.load(tmp_path / "common").plan)  # the same sources, no features
    other.save(tmp_path / "other")
    with pytest.raises(ValueError) as err:
        astra.Store.load(tmp_path / "other", project.plan)
    assert "different plan" in str(err.value) and not CLI_ADVICE.search(str(err.value)), str(err.value)

    for call in (lambda: project.service("fraud_model"), lambda: project.service("nope@v1"),
                 lambda: project.store(services=["fraud_model@v9"])):
        with pytest.raises(astra.ProjectError) as err:
            call()
        assert not CLI_ADVICE.search(str(err.value)), str(err.value)
    with pytest.raises(astra.UnknownServiceError) as err:
        store.get("fraud_model@v9", [{"user_id": 1}], at=AT)
    assert not CLI_ADVICE.search(str(err.value))
