"""mode: one body through the reference, the offline backfill and the online store (batch and
single-entity plans), checked against independent implementations over the values each query's
window holds: scipy.stats.mode for integers (the smallest of equally frequent values) and pandas'
Series.mode for strings (every mode, sorted: its first)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from scipy import stats
from segment_cases import SETTINGS, SPINE, T0, H, answers, each, events, window
from three_engines import CompileFailed, compile_features

FEATURES = """
    mn: int64? = mode(ev.n, 3h)
    ml: int64? = mode(ev.n)
    ms: string? = mode(ev.s)
    mw: string? = mode(ev.s, 3h)
"""
EXPECTED = {"mn": ("n", 3), "ml": ("n", None), "ms": ("s", None), "mw": ("s", 3)}


def oracle(xs: list):
    if not xs:
        return None
    if isinstance(xs[0], str):
        return pd.Series(xs, dtype=object).mode().iloc[0]
    return int(stats.mode(np.array(xs, dtype=np.int64), keepdims=False).mode)


@SETTINGS
@given(events(floats=None))
def test_mode_matches_scipy_and_pandas_in_every_engine(rows):
    got = answers(FEATURES, rows)
    bad = []
    for name, (column, hours) in EXPECTED.items():
        for engine, j, value in each(got, name):
            xs = window(rows, SPINE[j], column, hours)
            want = oracle(xs)
            if value != want or type(value) is not type(want):
                bad.append(f"{engine} {name} query {j}: {value!r} != {want!r} ({xs})")
    assert not bad, "\n".join(bad[:10])


def test_ties_go_to_the_smallest_value_and_an_empty_window_is_null():
    """Also: a string mode is a string like any other to the operators that read it."""
    features = FEATURES + '    tagged: string? = mode(ev.s) + "!"\n'
    rows = [{"id": 1, "ts": T0 + h * H, "x": None, "n": n, "s": s}
            for h, (n, s) in enumerate([(5, "b"), (-2, "é"), (5, "a"), (-2, "b"), (None, "a"), (9, None)])]
    got = answers(features, rows, [{"id": 1, "ts": T0 + 10 * H}, {"id": 1, "ts": T0}])
    for engine, (late, early) in got.items():
        # n: 5 and -2 twice each -> -2; s: "a" and "b" twice each -> "a"; 3h at 10h sees nothing
        assert (late["ml"], late["ms"], late["mn"], late["mw"], late["tagged"]) == (-2, "a", None, None, "a!"), engine
        assert (early["ml"], early["ms"], early["tagged"]) == (None, None, None), engine


def test_floats_are_refused_with_the_numeric_hint():
    with pytest.raises(CompileFailed, match="`mode` expects a column of integers, strings or booleans"):
        compile_features("    m: float64? = mode(ev.x)")


def test_booleans_and_a_where_filter_in_every_engine():
    """false < true breaks a tie; a `where` filter drops rows before counting."""
    from agg_engines import compile_features as compile_columns
    from agg_engines import run_all

    plan = compile_columns("b: bool?  n: int64?", """
    mb: bool? = mode(ev.b)
    mf: int64? = mode(ev.n where b)""")
    rows = [{"id": 1, "ts": T0 + h * H, "b": b, "n": n}
            for h, (b, n) in enumerate([(True, 4), (False, 4), (True, 7), (False, 4), (None, 1), (True, 9)])]
    got = run_all(plan, rows, [{"id": 1, "ts": T0 + 3 * H + 1}, {"id": 1, "ts": T0 + 10 * H}])
    for engine, (early, late) in got.items():
        # at 3h: b true, false, true, false (a tie -> false); n where b: 4, 7 (a tie -> 4)
        assert early["mb"] is False and early["mf"] == 4, engine
        # at 10h: b three true, two false, a null; n where b: 4, 7, 9 once each -> 4
        assert late["mb"] is True and late["mf"] == 4, engine
