"""histogram: one body through the reference, the offline backfill and the online store (batch and
single-entity plans, fed in one push, in batches, row by row while evicting, after a restart),
checked against independent implementations over the values each query's window holds: numpy
(`np.unique` counts looked up per listed value) for integers and booleans, DuckDB's
`count(*) FILTER (WHERE x = v)` for strings."""

from __future__ import annotations

import duckdb
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from segment_cases import I64_MIN, INTS, SETTINGS, SPINE, STRINGS, T0, H, answers, each, events, window
from three_engines import CompileFailed, compile_features

from astra.ops.aggregations import AGGREGATIONS

# -2^63 is no literal (2^63 overflows before its minus applies): the data has it, a list cannot
LISTED_INTS = st.lists(INTS.filter(lambda v: v != I64_MIN), min_size=1, max_size=5, unique=True)
LISTED_STRINGS = st.lists(STRINGS, min_size=1, max_size=4, unique=True)


def numpy_counts(xs: list, listed: list) -> tuple:
    """Counts of each listed value among xs, by numpy's own distinct-value counting."""
    if not xs:
        return (0,) * len(listed)
    distinct, counts = np.unique(np.array(xs, dtype=np.int64), return_counts=True)
    found = dict(zip(distinct.tolist(), counts.tolist()))
    return tuple(found.get(v, 0) for v in listed)


def duckdb_counts(xs: list, listed: list) -> tuple:
    """Counts of each listed string among xs, one FILTERed count per listed value, by DuckDB."""
    con = duckdb.connect()
    con.execute("CREATE TABLE w (x VARCHAR)")
    if xs:
        con.executemany("INSERT INTO w VALUES (?)", [(x,) for x in xs])
    sql = ", ".join(f"count(*) FILTER (WHERE x = ${i + 1})" for i in range(len(listed)))
    return tuple(con.execute(f"SELECT {sql} FROM w", listed).fetchone())


def _list(values: list) -> str:
    return "[" + ", ".join(f'"{v}"' if isinstance(v, str) else str(v) for v in values) + "]"


@SETTINGS
@given(events(floats=None), LISTED_INTS, LISTED_STRINGS)
def test_histogram_matches_numpy_and_duckdb_in_every_engine(rows, ints, strings):
    features = f"""
    hn: list<int64> = histogram(ev.n, {_list(ints)}, 3h)
    hl: list<int64> = histogram(ev.n, {_list(ints)})
    hs: list<int64> = histogram(ev.s, {_list(strings)})
    hw: list<int64> = histogram(ev.s, {_list(strings)}, 3h)
"""
    got = answers(features, rows)
    bad = []
    cases = (("hn", "n", 3, ints, numpy_counts), ("hl", "n", None, ints, numpy_counts),
             ("hs", "s", None, strings, duckdb_counts), ("hw", "s", 3, strings, duckdb_counts))
    for name, column, hours, listed, oracle in cases:
        for engine, j, value in each(got, name):
            want = oracle(window(rows, SPINE[j], column, hours), listed)
            if value != want or not all(type(c) is int for c in value):
                bad.append(f"{engine} {name} query {j}: {value!r} != {want!r}")
    assert not bad, "\n".join(bad[:10])


def test_counts_in_list_order_nulls_ignored_and_an_empty_window_gives_zeros():
    """Also: the list is a list like any other to the operators that read it, and a `where`
    filter drops rows before counting."""
    features = """
    h: list<int64> = histogram(ev.s, ["b", "a", "zz"])
    hw: list<int64> = histogram(ev.n where s == "a", [5, -2], 3h)
    k: int64 = length(histogram(ev.n, [1, 2, 3]))
"""
    rows = [{"id": 1, "ts": T0 + h * H, "x": None, "n": n, "s": s}
            for h, (n, s) in enumerate([(5, "b"), (-2, "a"), (5, "a"), (-2, None), (None, "a"), (9, "b")])]
    got = answers(features, rows, [{"id": 1, "ts": T0 + 10 * H}, {"id": 1, "ts": T0}, {"id": 1, "ts": T0 + 3 * H}])
    for engine, (late, empty, mid) in got.items():
        assert late["h"] == (2, 3, 0) and late["hw"] == (0, 0) and late["k"] == 3, engine  # 3h at 10h: nothing
        assert empty["h"] == (0, 0, 0) and empty["hw"] == (0, 0), engine  # no row before T0: zeros, not null
        assert mid["h"] == (1, 2, 0) and mid["hw"] == (1, 1), engine  # [0h, 3h): n where s == "a": -2, 5


def test_booleans_and_int32_in_every_engine():
    from agg_engines import compile_features as compile_columns
    from agg_engines import run_all

    plan = compile_columns("b: bool?  k: int32?", """
    hb: list<int64> = histogram(ev.b, [true, false])
    hk: list<int64> = histogram(ev.k, [-2147483648, 0, 7], 1h every 1h)""")
    rows = [{"id": 1, "ts": T0 + h * H, "b": b, "k": k}
            for h, (b, k) in enumerate([(True, 0), (False, -2**31), (True, 7), (None, 7), (True, None)])]
    got = run_all(plan, rows, [{"id": 1, "ts": T0 + 2 * H + 5}, {"id": 1, "ts": T0 + 10 * H}])
    for engine, (early, late) in got.items():
        assert early["hb"] == (2, 1) and early["hk"] == (1, 0, 0), engine  # hop: [1h, 2h) holds k = -2^31
        assert late["hb"] == (3, 1) and late["hk"] == (0, 0, 0), engine


@pytest.mark.parametrize("call,message", [
    ("histogram(ev.x, [1.5])", "`histogram` expects a column of integers, strings or booleans"),
    ('histogram(ev.n, ["a"])', "`histogram` of `int64` values needs a list of `int64` literals, got `list<string>`"),
    ("histogram(ev.s, [1, 2])", "`histogram` of `string` values needs a list of `string` literals"),
    ("histogram(ev.n, [])", "`histogram` needs at least one value to count"),
    ("histogram(ev.n, [3, 1, 3], 7d)", "`histogram` lists the value 3 twice"),
    ('histogram(ev.s, ["a", "a"])', '`histogram` lists the value "a" twice'),
    ("histogram(ev.n, 3)", "needs a list of `int64` literals, got `int64`"),
    ("histogram(ev.n, ev.n)", "`histogram` needs literal values after the column"),
    ("histogram(ev.n)", "`histogram` needs literal values after the column"),
])
def test_bad_values_are_located_errors(call, message):
    with pytest.raises(CompileFailed, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        compile_features(f"    h: list<int64> = {call}")


def test_the_algebra_merges_and_subtracts_counts():
    alg = AGGREGATIONS["histogram"].algebra
    listed = ("a", "b")
    a = alg.fold(["a", None, "b", "a"], param=listed)
    b = alg.fold(["b", "c"], param=listed)
    assert a == (2, 1) and alg.merge(a, b, listed) == (2, 2) and alg.subtract(alg.merge(a, b, listed), b, listed) == a
    assert alg.finalize(alg.empty(listed), listed) == (0, 0)
    # true is not 1: a boolean never counts as an integer (nor the other way round)
    assert alg.fold([True, 1, 1], param=(1,)) == (2,)
    assert AGGREGATIONS["histogram"].reference([True, 1], (True,)) == (1,)


def test_an_int32_column_refuses_a_value_no_int32_can_equal(tmp_path):
    from agg_engines import PROJECT

    from astra.compiler import compile_project

    (tmp_path / "p.feat").write_text(PROJECT.format(columns="k: int32?  b: bool?", features="""
    h: list<int64> = histogram(ev.k, [1, 3000000000])
    t: list<int64> = histogram(ev.b, [true, 1])
    u: list<int64> = histogram(ev.k, [2, 1 + 1])"""))
    got = [(d.code, d.message) for d in compile_project(tmp_path, lock="ignore").diagnostics]
    assert got == [("E0214", "`histogram` value 3000000000 is not an int32: no value of the column equals it"),
                   ("E0201", "the items of the list of `histogram` must be non-null and of one type"),
                   ("E0207", "the list of `histogram` must be a list of literals, e.g. `[1, 2]`")], got


def test_explain_writes_the_values_as_the_source_does_and_they_compile_back():
    """`astra explain` prints an aggregation through `param_text`: the list in the language's own
    syntax (strings quoted and escaped), which compiles back to the same values."""
    from astra.plan.pretty import expr

    line = '    h: list<int64> = histogram(ev.s, ["a", "q\\"uote", "back\\\\slash", ""], 3h)'
    [f] = compile_features(line).features
    text = expr(f.expr)
    assert text == 'histogram(ev.s, ["a", "q\\"uote", "back\\\\slash", ""], 3h)'
    [again] = compile_features(f"    h: list<int64> = {text}").features
    assert again.expr.param == f.expr.param == ("a", 'q"uote', "back\\slash", "")
    [g] = compile_features("    k: list<int64> = histogram(ev.n, [-3, 0, 9223372036854775807])").features
    assert expr(g.expr) == "histogram(ev.n, [-3, 0, 9223372036854775807])"
