"""`astra parity` compares every value by its declared type: each type of the type system
(astra/lang/types.py), its optional variant and lists of it, with nulls.

The online engine returns timestamps and durations as int µs and lists as tuples; the offline
engine returns datetimes, timedeltas and lists.  Equal values must match, different ones not.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from astra.lang.types import BOOL, DURATION, FLOAT32, FLOAT64, INT32, INT64, SCALARS, STRING, TIMESTAMP, Type
from astra.offline import backfill
from astra.ops.dtypes import numpy_dtype, polars_dtype
from astra.parity import canonical, compare, run_parity
from astra.project import Project

EPOCH = dt.datetime(1970, 1, 1)

# per scalar type: values as the offline engine returns them (Python values of its Polars dtype)
VALUES = {
    INT32: st.integers(-(2**31), 2**31 - 1),
    INT64: st.integers(-(2**63), 2**63 - 1),
    FLOAT32: st.floats(width=32),
    FLOAT64: st.floats(),
    BOOL: st.booleans(),
    STRING: st.text(max_size=5),
    TIMESTAMP: st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1)),
    DURATION: st.timedeltas(min_value=dt.timedelta(days=-9999), max_value=dt.timedelta(days=9999)),
}


def test_every_scalar_type_is_covered():
    assert {t.name for t in VALUES} == set(SCALARS)


def _micros(v):
    if isinstance(v, dt.datetime):
        return (v - EPOCH) // dt.timedelta(microseconds=1)
    if isinstance(v, dt.timedelta):
        return v // dt.timedelta(microseconds=1)
    return v


def online_repr(v, t: Type):
    """What `Result.rows()` holds for `v`: a Python value of the type's numpy dtype, tuples for lists."""
    if v is None:
        return None
    if t.name == "list":
        return tuple(online_repr(x, t.item) for x in v)
    return np.array([_micros(v)], numpy_dtype(t)).tolist()[0]


def offline_repr(v, t: Type):
    """What the backfill frame's `to_list()` holds for `v`."""
    return pl.Series([v], dtype=polars_dtype(t)).to_list()[0]


def matches(t: Type, online, offline) -> bool:
    return compare(t, canonical(online, t), canonical(offline, t))[0]


TYPES = [*VALUES, *(t.nullable() for t in VALUES)]


def _id(t: Type) -> str:
    return str(t)


@pytest.mark.parametrize("t", TYPES, ids=_id)
@given(data=st.data())
def test_equal_values_match(t, data):
    v = data.draw(VALUES[t.non_null()])
    assert matches(t, online_repr(v, t), offline_repr(v, t))


@pytest.mark.parametrize("t", TYPES, ids=_id)
@given(data=st.data())
def test_equal_lists_match_and_reordered_ones_do_not(t, data):
    lt = Type.list_of(t.non_null())
    vs = data.draw(st.lists(VALUES[t.non_null()], max_size=4))
    assert matches(lt, online_repr(vs, lt), offline_repr(vs, lt))
    assert matches(lt.nullable(), online_repr(vs, lt), offline_repr(vs, lt))
    if len(vs) > 1 and not matches(t, offline_repr(vs[0], t), offline_repr(vs[-1], t)):
        assert not matches(lt, online_repr(vs[::-1], lt), offline_repr(vs, lt))
    assert not matches(lt, online_repr(vs[:-1], lt), offline_repr(vs, lt)) or not vs


@pytest.mark.parametrize("t", TYPES, ids=_id)
@given(data=st.data())
def test_different_values_do_not_match(t, data):
    a, b = data.draw(VALUES[t.non_null()]), data.draw(VALUES[t.non_null()])
    on, off = online_repr(a, t), offline_repr(b, t)
    if t.is_float:
        same = (math.isnan(on) and math.isnan(off)) or on == off or (
            math.isfinite(on) and math.isfinite(off) and abs(on - off) <= 1e-9 * max(abs(on), abs(off)))
        if t.name == "float32" and math.isfinite(on) and math.isfinite(off):
            same |= abs(on - off) <= 2.0**-23 * max(abs(on), abs(off))
    else:
        same = _micros(a) == _micros(b)
    assert matches(t, on, off) == same


@pytest.mark.parametrize("t", TYPES, ids=_id)
@given(data=st.data())
def test_null_matches_only_null(t, data):
    v = data.draw(VALUES[t.non_null()])
    assert matches(t, None, None)
    assert not matches(t, None, offline_repr(v, t))
    assert not matches(t, online_repr(v, t), None)


def test_float_tolerances():
    assert matches(FLOAT64, 1.0, 1.0 + 1e-12)
    assert not matches(FLOAT64, 1.0, 1.0 + 1e-6)
    assert matches(FLOAT64, math.nan, math.nan)
    assert not matches(FLOAT64, math.nan, 1.0)
    assert matches(FLOAT64, math.inf, math.inf)
    assert not matches(FLOAT64, math.inf, -math.inf)
    assert not matches(FLOAT64, math.inf, 1e308)
    one_ulp = float(np.nextafter(np.float32(3.0), np.float32(4.0)))
    assert matches(FLOAT32, 3.0, one_ulp)  # each engine rounds its float64 result to float32 once
    assert not matches(FLOAT64, 3.0, one_ulp)
    assert not matches(FLOAT32, 3.0, float(np.float32(3.001)))


def test_a_bool_is_not_an_int():
    assert not matches(INT64, True, 1)
    assert not matches(BOOL, 1, True)


# --------------------------------------------------------------------------- end to end

SCALAR_COLUMNS = {"i32": "int32", "i64": "int64", "f32": "float32", "f64": "float64", "b": "bool", "s": "string",
                  "t": "timestamp", "d": "duration"}
PROJECT = """
entity user {
    key user_id: int64
}

events ev for user {
    path "ev.parquet"
    time ts
    columns {
        user_id: int64
%(columns)s
    }
}

features f v1 for user {
%(features)s
    i32_v: int32 = last(ev.i32) ?? 0
    i64_v: int64 = count(ev)
    f32_v: float32 = last(ev.f32) ?? 0.5
    f64_v: float64 = sum(ev.f64)
    b_v: bool = last(ev.b) ?? false
    s_v: string = last(ev.s) ?? ""
    t_v: timestamp = last(ev.ts) ?? now()
    d_v: duration = now() - (last(ev.t) ?? now())
}

service s v1 {
    f@v1.*
}
"""


def _project(tmp) -> Project:
    columns = "\n".join(f"        {c}: {t}?" for c, t in SCALAR_COLUMNS.items())
    features = "\n".join(f"    {c}_last: {t}? = last(ev.{c})\n    {c}_k: list<{t}> = last_k(ev.{c}, 3)"
                         for c, t in SCALAR_COLUMNS.items())
    (tmp / "p.feat").write_text(PROJECT % {"columns": columns, "features": features})
    return Project.load(tmp)


def _data(tmp, rng: np.random.Generator, n: int = 300) -> pl.DataFrame:
    base = dt.datetime(2026, 1, 1)
    ts = [base + dt.timedelta(minutes=int(m)) for m in rng.integers(0, 600, n)]

    def nulls(name, values, dtype):
        return pl.Series(name, [None if rng.random() < 0.2 else v for v in values], dtype=dtype)

    pl.DataFrame([
        pl.Series("user_id", rng.integers(1, 6, n)),
        nulls("i32", rng.integers(-5, 5, n).tolist(), pl.Int32),
        nulls("i64", (rng.integers(-5, 5, n) * 10**12).tolist(), pl.Int64),
        nulls("f32", (rng.random(n) * 3).tolist(), pl.Float32),
        nulls("f64", (rng.random(n) * 3).tolist(), pl.Float64),
        nulls("b", (rng.random(n) < 0.5).tolist(), pl.Boolean),
        nulls("s", [f"s{i}" for i in rng.integers(0, 4, n)], pl.String),
        nulls("t", ts, pl.Datetime("us")),
        nulls("d", [dt.timedelta(seconds=int(x)) for x in rng.integers(0, 9999, n)], pl.Duration("us")),
        pl.Series("ts", ts, dtype=pl.Datetime("us")),
    ]).write_parquet(tmp / "ev.parquet")
    return pl.DataFrame({"user_id": rng.integers(1, 8, 60),
                         "ts": [base + dt.timedelta(minutes=int(m)) for m in rng.integers(0, 700, 60)]}
                        ).with_columns(pl.col("ts").cast(pl.Datetime("us")))


def test_parity_matches_every_type_end_to_end(tmp_path):
    project = _project(tmp_path)
    spine = _data(tmp_path, np.random.default_rng(3))
    report = run_parity(project.plan, "s", 1, spine, tmp_path)
    assert report.ok, report.table()
    types = {f.type for f in report.features}
    for name in SCALARS:  # each type as T?, T and list<T>
        assert {f"{name}?", name, f"list<{name}>"} <= types
    assert all(f.rows == 60 for f in report.features)
    out = backfill(project.plan, "s", 1, spine, tmp_path)  # nulls and values both reach the comparison
    for c in SCALAR_COLUMNS:
        assert 0 < out[f"{c}_last"].null_count() < 60
