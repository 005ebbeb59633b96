"""first_k, top_k, bottom_k, median and percentile: one body through the reference, the offline
backfill and the online store (batch and single-entity plans, fed several ways), checked against
independent implementations (list slicing, `sorted`/`heapq`, `numpy.quantile`) over the values
each query's window holds (docs/semantics.md, "Order, shape and decay aggregations")."""

from __future__ import annotations

import heapq
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from segment_cases import FLOATS, SETTINGS, SPINE, T0, H, answers, each, events, same_float, window
from three_engines import CompileFailed, compile_features


def _key(v):
    """docs: NaN above every number; other values by themselves."""
    return (1, 0.0) if isinstance(v, float) and math.isnan(v) else (0, v)


def same_items(got, want) -> bool:
    """Lists equal item by item: NaN for NaN, floats to the sign of zero, others by type and value."""
    if not isinstance(got, tuple | list) or len(got) != len(want):
        return False
    for g, w in zip(got, want):
        if isinstance(w, float):
            if not isinstance(g, float):
                return False
            if math.isnan(w) or math.isnan(g):
                if not (math.isnan(w) and math.isnan(g)):
                    return False
            elif g != w or math.copysign(1, g) != math.copysign(1, w):
                return False
        elif type(g) is not type(w) or g != w:
            return False
    return True


K_FEATURES = """
    fx: list<float64> = first_k(ev.x, 3, 3h)
    fs: list<string> = first_k(ev.s, 2)
    tx: list<float64> = top_k(ev.x, 3, 3h)
    tn: list<int64> = top_k(ev.n, 2)
    tk: list<string> = top_k(ev.s, 3)
    bx: list<float64> = bottom_k(ev.x, 4)
    bn: list<int64> = bottom_k(ev.n, 2, 3h)
"""
K_EXPECTED = {  # name -> (column, window hours, expected from the window's values)
    "fx": ("x", 3, lambda xs: xs[:3]),
    "fs": ("s", None, lambda xs: xs[:2]),
    "tx": ("x", 3, lambda xs: heapq.nlargest(3, xs, key=_key)),  # = sorted(..., reverse=True)[:3]: stable
    "tn": ("n", None, lambda xs: heapq.nlargest(2, xs)),
    "tk": ("s", None, lambda xs: sorted(xs, reverse=True)[:3]),
    "bx": ("x", None, lambda xs: heapq.nsmallest(4, xs, key=_key)),
    "bn": ("n", 3, lambda xs: sorted(xs)[:2]),
}


@SETTINGS
@given(events())
def test_first_k_top_k_bottom_k_match_sorted_in_every_engine(rows):
    got = answers(K_FEATURES, rows)
    bad = []
    for name, (column, hours, expect) in K_EXPECTED.items():
        for engine, j, value in each(got, name):
            want = list(expect(window(rows, SPINE[j], column, hours)))
            if not same_items(value, want):
                bad.append(f"{engine} {name} query {j}: {value} != {want}")
    assert not bad, "\n".join(bad[:10])


Q_FEATURES = """
    md: float64? = median(ev.x, 3h)
    p0: float64? = percentile(ev.x, 0.0)
    p1: float64? = percentile(ev.x, 1)
    p9: float64? = percentile(ev.x, 0.9)
    pn: float64? = percentile(ev.n, 0.25, 3h)
    mn: float64? = median(ev.n)
"""
Q_EXPECTED = {"md": ("x", 3, 0.5), "p0": ("x", None, 0.0), "p1": ("x", None, 1.0), "p9": ("x", None, 0.9),
              "pn": ("n", 3, 0.25), "mn": ("n", None, 0.5)}
FINITE = FLOATS.filter(lambda v: not math.isinf(v))  # infinities: see the explicit cases below


@SETTINGS
@given(events(floats=FINITE))
def test_median_and_percentile_match_numpy_quantile_in_every_engine(rows):
    got = answers(Q_FEATURES, rows)
    bad = []
    for name, (column, hours, q) in Q_EXPECTED.items():
        for engine, j, value in each(got, name):
            xs = np.array(window(rows, SPINE[j], column, hours), dtype=np.float64)
            if not xs.size:
                want, slack = None, 0.0
            else:
                want = float(np.quantile(xs, q))  # linear, numpy's default: NaN when one is NaN
                # numpy interpolates as a + (b - a) g: the same point within a few ulps of the ends
                slack = 8 * math.ulp(float(np.nanmax(np.abs(xs)))) if not np.isnan(xs).all() else 0.0
            if not same_float(value, want, atol=slack):
                bad.append(f"{engine} {name} query {j}: {value} != {want} ({xs.tolist()})")
    assert not bad, "\n".join(bad[:10])


def _one(features: str, values: list, column: str = "x") -> dict[str, list]:
    """Answers at T0 + 10h of a window holding `values` in this order (one per hour)."""
    rows = [{"id": 1, "ts": T0 + h * H, "x": None, "n": None, "s": None, column: v} for h, v in enumerate(values)]
    got = answers(features, rows, [{"id": 1, "ts": T0 + 10 * H}])
    return {engine: r[0] for engine, r in got.items()}


@pytest.mark.parametrize(("values", "want"), [
    ([1.0, math.inf], {"lo": 1.0, "mid": math.inf, "hi": math.inf}),  # towards an infinity: that infinity
    ([-math.inf, 1.0], {"lo": -math.inf, "mid": -math.inf, "hi": 1.0}),
    ([-math.inf, math.inf], {"lo": -math.inf, "mid": math.nan, "hi": math.inf}),  # between them: NaN
    ([math.inf, math.inf, 2.0], {"lo": 2.0, "mid": math.inf, "hi": math.inf}),  # equal ends: the value
    ([3.0, math.nan, 1.0], {"lo": math.nan, "mid": math.nan, "hi": math.nan}),  # a NaN: NaN
    ([5.0, 1.0, 4.0, 2.0], {"lo": 1.0, "mid": 3.0, "hi": 5.0}),  # the mean of the two middle values
])
def test_percentile_rules_for_infinities_nan_and_even_counts(values, want):
    got = _one("""
    lo: float64? = percentile(ev.x, 0.0)
    mid: float64? = median(ev.x)
    hi: float64? = percentile(ev.x, 1.0)""", values)
    for engine, row in got.items():
        for name, w in want.items():
            assert same_float(row[name], w, rtol=0.0), f"{engine} {name}: {row[name]} != {w}"


def test_ties_keep_row_order_and_nan_ranks_above_every_number():
    """-0.0 and 0.0 are equal: the earlier row first, in top_k and bottom_k alike; NaN is the
    largest value; first_k keeps NaN as a value."""
    values = [0.0, math.nan, -0.0, 2.0, -math.inf]
    got = _one("""
    t: list<float64> = top_k(ev.x, 3)
    b: list<float64> = bottom_k(ev.x, 3)
    f: list<float64> = first_k(ev.x, 2)""", values)
    for engine, row in got.items():
        assert same_items(row["t"], [math.nan, 2.0, 0.0]), (engine, row["t"])
        assert same_items(row["b"], [-math.inf, 0.0, -0.0]), (engine, row["b"])
        assert same_items(row["f"], [0.0, math.nan]), (engine, row["f"])


def test_int64_extremes_are_ordered_exactly():
    values = [2**63 - 1, -2**63, 2**63 - 2, 0]
    got = _one("""
    t: list<int64> = top_k(ev.n, 2)
    b: list<int64> = bottom_k(ev.n, 1)
    f: list<int64> = first_k(ev.n, 5)""", values, column="n")
    for engine, row in got.items():
        assert row["t"] == (2**63 - 1, 2**63 - 2) and row["b"] == (-2**63,), engine
        assert row["f"] == tuple(values), engine


def test_empty_windows_give_empty_lists_and_null_quantiles():
    got = answers("""
    f: list<float64> = first_k(ev.x, 2, 1h)
    t: list<string> = top_k(ev.s, 2)
    m: float64? = median(ev.x, 1h)
    p: float64? = percentile(ev.n, 0.5)""", [{"id": 1, "ts": T0, "x": None, "n": None, "s": None}],
        [{"id": 1, "ts": T0 + 5 * H}, {"id": 1, "ts": T0}])
    for engine, rows in got.items():
        for r in rows:
            assert r == {"f": (), "t": (), "m": None, "p": None}, engine


@pytest.mark.parametrize(("expr", "message"), [
    ("percentile(ev.x, 1.5)", "E0210"),
    ("percentile(ev.x, 7d)", "E0210"),
    ("percentile(ev.x)", "E0210"),
    ("top_k(ev.x, 0)", "positive integer k"),
    ("first_k(ev.x, 1.5)", "E0209"),
    ("median(ev.s)", "numeric column"),
])
def test_bad_parameters_are_located_errors(expr, message):
    with pytest.raises(CompileFailed, match=message):
        compile_features(f"    y: list<float64> = {expr}" if "_k" in expr else f"    y: float64? = {expr}")


@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=30),
       st.floats(0.0, 1.0))
@SETTINGS
def test_the_kernel_alone_matches_numpy_on_many_values(xs, q):
    """The shared kernel over one segment (no engine around it) against numpy.quantile."""
    from astra.ops.aggregations.order import _percentiles
    from astra.ops.segments import Segments

    got = _percentiles(Segments(values=np.array(xs), offsets=np.array([0, len(xs)])), q)
    want = float(np.quantile(np.array(xs), q))
    assert got.valid[0]
    assert same_float(float(got.values[0]), want, atol=8 * math.ulp(max(abs(x) for x in xs)))
