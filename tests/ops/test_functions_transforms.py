"""The stateless transforms of docs/language.md ("Functions"): log1p, expm1, bucketize, ordinal,
one_hot, and clip's edges.  Each rule is checked in the offline engine, both online plans and the
reference interpreter; expected values are worked out from the documented rule (comments say
how), and the property tests compare with numpy and scikit-learn on random data with nulls, NaN,
infinities and huge values."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from three_engines import CompileFailed, Near, check, compile_features, run_all

NAN, INF = math.nan, math.inf
I64_MIN, I64_MAX = -(2**63), 2**63 - 1
F32_01 = 0.10000000149011612  # the float32 nearest 0.1
PROPERTY = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_log1p_is_null_at_and_below_minus_one_and_keeps_nan_and_tiny_values():
    plan = compile_features("""
        l: float64? = log1p(r.v)
        e: float64 = expm1(r.v)
        li: float64? = log1p(r.k)
    """, "v: float64  k: int64")
    values = [NAN, INF, -INF, -1.0, -2.0, -0.0, 1e-300, -0.5, 1.0, 1e308, 1000.0]
    ks = [0, -1, -2, 1, I64_MAX, I64_MIN, 3, 0, 0, 0, 0]
    check(run_all(plan, [dict(ts=1, v=v, k=k) for v, k in zip(values, ks)]), {
        # null for x <= -1 (as log at 0); NaN stays NaN; log1p(x) = x for tiny x, -0.0 keeps its sign
        "l": [NAN, INF, None, None, None, -0.0, 1e-300, Near(math.log(0.5)), Near(math.log(2.0)),
              Near(math.log(1e308)), Near(math.log(1001.0))],
        # e^x - 1: -1 at -inf, +inf once e^x overflows (past about 709.78); within 2 ulps of the C library's
        "e": [NAN, INF, -1.0, Near(math.expm1(-1.0)), Near(math.expm1(-2.0)), -0.0, 1e-300, Near(math.expm1(-0.5)),
              Near(math.expm1(1.0)), INF, INF],
        # an integer argument is read as float64 (2**63 - 1 becomes 2**63)
        "li": [0.0, None, None, Near(math.log(2.0)), Near(63 * math.log(2.0)), None, Near(math.log(4.0)), 0.0,
               0.0, 0.0, 0.0],
    })


def test_log1p_and_expm1_give_numpys_bits_in_every_engine():
    """Every engine runs numpy's kernel: the answers equal numpy.log1p / numpy.expm1 to the bit,
    not only within an ulp (numpy and the C library differ in the last bit for some inputs)."""
    plan = compile_features("l: float64? = log1p(r.v)\n e: float64 = expm1(r.v)", "v: float64")
    rng = np.random.default_rng(7)
    values = np.concatenate([rng.standard_normal(20) * 1e-3, rng.exponential(10.0, 20), rng.uniform(-1, 0, 20)])
    want_l, want_e = np.log1p(values), np.expm1(values)
    check(run_all(plan, [dict(ts=1, v=float(v)) for v in values]),
          {"l": [float(x) for x in want_l], "e": [float(x) for x in want_e]})


def test_bucketize_counts_the_boundaries_at_or_below_x():
    plan = compile_features("""
        b: int32? = bucketize(r.v, [-1.0, 0, 2.5])
        bi: int32 = bucketize(r.k, [-5, 0, 10])
        wide: int32 = bucketize(r.k, [0.5, 9007199254740992.0])
        single: int32 = bucketize(r.f, [0.1])
    """, "v: float64?  k: int64  f: float32")
    rows = [(-INF, I64_MIN, 0.0), (-1.0, -5, F32_01), (-1.0000001, -6, 0.05), (-0.5, 9, 1.0),
            (-0.0, 10, NAN), (0.0, I64_MAX, -INF), (2.5, 2**53 + 1, INF), (INF, 2**53 - 1, 0.1), (NAN, 0, 0.0),
            (None, 1, 0.0)]
    check(run_all(plan, [dict(ts=1, v=v, k=k, f=f) for v, k, f in rows]), {
        # a value equal to a boundary goes above it (-1.0 is in bucket 1, 2.5 in bucket 3); -0.0 equals
        # the boundary 0; NaN is above every number, so it is 3; null stays null
        "b": [0, 1, 0, 1, 2, 2, 3, 3, 3, None],
        # integers against integer boundaries, exactly, to the int64 extremes
        "bi": [0, 1, 0, 2, 3, 3, 3, 3, 2, 2],
        # an integer meets float boundaries as float64: 2**53 + 1 becomes 2**53, at the boundary;
        # 2**53 - 1 stays below it
        "wide": [0, 0, 0, 1, 1, 2, 2, 1, 0, 1],
        # a float32 x is compared as float64: float32(0.1) is above the double 0.1
        "single": [0, 1, 0, 1, 1, 0, 1, 1, 0, 0],
    })


def test_ordinal_and_one_hot_follow_the_listed_categories():
    plan = compile_features("""
        o: int32? = ordinal(r.s, ["b", "a", "é"], -1)
        unlisted: int32? = ordinal(r.s, ["b", "a"])
        coded: int64 = ordinal(r.s, ["b", "a"], 7) ?? -2
        ok: int32? = ordinal(r.k, [10, -3, 4611686018427387904])
        oi: int32 = ordinal(r.i, [1, 2], 99)
        hot: int32? = one_hot(r.s, "a")
        hotk: int32 = one_hot(r.k, -3)
    """, "s: string?  k: int64  i: int32")
    rows = [("a", -3, 2), ("b", 10, 1), ("é", 2**62, 5), ("e", 0, -1), ("B", I64_MIN, 2**31 - 1), ("", -4, 0),
            (None, I64_MAX, 1)]
    check(run_all(plan, [dict(ts=1, s=s, k=k, i=i) for s, k, i in rows]), {
        # the position in the list; a value not in it is the unseen code (case and accents matter)
        "o": [1, 0, 2, -1, -1, -1, None],
        # no unseen code: null for a value not in the list
        "unlisted": [1, 0, None, None, None, None, None],
        # a null x stays null, so `??` gives it a code of its own
        "coded": [1, 0, 7, 7, 7, 7, -2],
        "ok": [1, 0, 2, None, None, None, None],
        "oi": [1, 0, 99, 99, 99, 99, 0],
        # 1 for the category, 0 for every other value; null stays null
        "hot": [1, 0, 0, 0, 0, 0, None],
        "hotk": [1, 0, 0, 0, 0, 0, 0],
    })


def test_clip_keeps_nulls_and_clips_infinities():
    plan = compile_features("""
        c: float64? = clip(r.v, r.lo, 1.0)
        ci: int64? = clip(r.k, -2, r.hi)
    """, "v: float64?  lo: float64?  k: int64  hi: int64?")
    rows = [(None, 0.0, 5, 3), (INF, 0.0, I64_MAX, 3), (-INF, 0.0, I64_MIN, 3), (0.5, None, 0, None),
            (0.5, -INF, -5, I64_MIN), (NAN, 0.0, 1, 3), (0.5, INF, 2, 0)]
    check(run_all(plan, [dict(ts=1, v=v, lo=lo, k=k, hi=hi) for v, lo, k, hi in rows]), {
        # null in, null out; infinities clip like numbers; lo > hi gives hi; NaN gives NaN
        "c": [None, 1.0, 0.0, None, 0.5, NAN, 1.0],
        "ci": [3, 3, -2, None, I64_MIN, 1, 0],
    })


def test_a_literal_argument_or_in_list_item_may_be_negative():
    plan = compile_features("""
        b: int32 = bucketize(r.v, [-(2.5), -1, 0])
        m: bool = r.k in [-1, 2]
    """, "v: float64  k: int64")
    check(run_all(plan, [dict(ts=1, v=v, k=k) for v, k in [(-3.0, -1), (-2.5, 1), (-1.0, 2), (0.0, 1)]]),
          {"b": [0, 1, 2, 3], "m": [True, False, True, False]})


@pytest.mark.parametrize(("feature", "code"), [
    ("b: int32 = bucketize(r.v, [1, 1])", "E0212"),
    ("b: int32 = bucketize(r.v, [2.0, 1.5])", "E0212"),
    ("b: int32 = bucketize(r.v, [])", "E0212"),
    ("b: int32 = bucketize(r.v, [true])", "E0212"),
    ("b: int32 = bucketize(r.v, r.v)", "E0207"),
    ("b: int32 = bucketize(r.s, [1])", "E0201"),
    ("b: int32 = bucketize(r.v, [1, r.v])", "E0207"),
    ("o: int32? = ordinal(r.s, [\"a\", \"a\"])", "E0213"),
    ("o: int32? = ordinal(r.s, [\"a\"], 0)", "E0213"),
    ("o: int32? = ordinal(r.s, [\"a\"], 1.5)", "E0213"),
    ("o: int32? = ordinal(r.v, [1.5])", "E0201"),
    ("o: int32? = ordinal(r.s, [\"a\"], r.k)", "E0207"),
    ("h: int32 = one_hot(r.k, \"a\")", "E0213"),
    ("h: int32 = one_hot(r.s, [\"a\"])", "E0213"),
    ("b: int32 = bucketize(r.v)", "E0202"),
    ("x: float64 = log1p(r.v)", "E0205"),  # null below -1: declared `float64?`
    ("x: float64 = round(r.v, -1)", "E0207"),
])
def test_misuse_is_a_located_error(feature: str, code: str):
    with pytest.raises(CompileFailed) as err:
        compile_features(feature, "v: float64  s: string  k: int64")
    assert f"error[{code}]" in str(err.value)


# --------------------------------------------------------------------------- against numpy and scikit-learn

hostile = st.one_of(st.sampled_from([NAN, INF, -INF, 0.0, -0.0, -1.0, 1e308, -1e308, 5e-324]),
                    st.floats(allow_nan=True, allow_infinity=True), st.floats(-3.0, 3.0))
maybe = lambda s: st.one_of(st.none(), s, s, s)  # noqa: E731


@functools.cache
def _bucketize_plan(bounds: tuple) -> object:
    return compile_features(f"b: int32? = bucketize(r.v, [{', '.join(map(repr, bounds))}])\n"
                            "l: float64? = log1p(r.v)\n c: float64? = clip(r.v, -1.5, 1e300)", "v: float64?")


@PROPERTY
@given(bounds=st.lists(st.floats(-1e6, 1e6) | st.sampled_from([-1.0, 0.0, 1.0, 1e300]), min_size=1, max_size=40,
                       unique=True).map(lambda b: tuple(sorted({x + 0.0 for x in b}))),
       values=st.lists(maybe(hostile), min_size=1, max_size=30))
def test_bucketize_log1p_and_clip_equal_numpy(bounds, values):
    plan = _bucketize_plan(bounds)
    x = np.array([NAN if v is None else v for v in values])
    digitized = np.digitize(x, np.array(bounds), right=False)
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.log1p(x)
    clipped = np.clip(x, -1.5, 1e300)
    null = [v is None for v in values]
    check(run_all(plan, [dict(ts=1, v=v) for v in values]), {
        "b": [None if n else int(d) for n, d in zip(null, digitized)],
        # numpy's -inf (at -1) and NaN (below) are null; NaN in stays NaN
        "l": [None if n or (v <= -1) else float(lg) for n, v, lg in zip(null, x, logs)],
        "c": [None if n else float(c) for n, c in zip(null, clipped)],
    })


CATEGORIES = ("a", "b", "é", "ß", "a b", "")


@functools.cache
def _category_plan(categories: tuple, unseen: int | None) -> object:
    listed = "[" + ", ".join(f'"{c}"' for c in categories) + "]"
    code = "" if unseen is None else f", {unseen}"
    hots = "\n".join(f"h{i}: int32? = one_hot(r.s, \"{c}\")" for i, c in enumerate(categories))
    return compile_features(f"o: int32? = ordinal(r.s, {listed}{code})\n{hots}", "s: string?")


@PROPERTY
@given(categories=st.lists(st.sampled_from(CATEGORIES), min_size=1, max_size=5, unique=True).map(tuple),
       unseen=st.sampled_from([None, -1, 99, -(2**31)]),
       values=st.lists(maybe(st.sampled_from((*CATEGORIES, "z", "A", "ss"))), min_size=1, max_size=25))
def test_ordinal_and_one_hot_equal_scikit_learn(categories, unseen, values):
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder

    plan = _category_plan(categories, unseen)
    # a null stays null (docs/language.md): scikit-learn, given explicit categories, would call it
    # unseen, so it is asked about the non-null values only
    present = np.array([v if v is not None else categories[0] for v in values], dtype=object).reshape(-1, 1)
    ordinal = OrdinalEncoder(categories=[list(categories)], handle_unknown="use_encoded_value",
                             unknown_value=np.nan if unseen is None else unseen).fit(present)
    codes = ordinal.transform(present)[:, 0]  # no unseen code: NaN, null in the language
    hots = OneHotEncoder(categories=[list(categories)], handle_unknown="ignore", sparse_output=False) \
        .fit(present).transform(present)
    with_nulls = lambda col: [None if v is None or math.isnan(c) else int(c) for v, c in zip(values, col)]  # noqa: E731
    check(run_all(plan, [dict(ts=1, s=v) for v in values]), {
        "o": with_nulls(codes), **{f"h{i}": with_nulls(hots[:, i]) for i in range(len(categories))},
    })


@functools.cache
def _integer_plan(categories: tuple) -> object:
    return compile_features(f"o: int32 = ordinal(r.k, [{', '.join(map(str, categories))}], -1)", "k: int64")


@PROPERTY
# scikit-learn takes numeric categories sorted only (the hand-written test above covers other orders)
@given(categories=st.lists(st.integers(I64_MIN + 1, I64_MAX), min_size=1, max_size=6, unique=True)
       .map(lambda c: tuple(sorted(c))),
       values=st.lists(st.integers(I64_MIN, I64_MAX), min_size=1, max_size=20), data=st.data())
def test_integer_ordinal_equals_scikit_learn(categories, values, data):
    from sklearn.preprocessing import OrdinalEncoder

    values = values + data.draw(st.lists(st.sampled_from(categories), max_size=10))  # some hits
    plan = _integer_plan(categories)  # a negative category is written `-5`: the checker folds it to one literal
    column = np.array(values, dtype=np.int64).reshape(-1, 1)
    encoder = OrdinalEncoder(categories=[np.array(categories, dtype=np.int64)], handle_unknown="use_encoded_value",
                             unknown_value=-1, dtype=np.int64).fit(column)
    check(run_all(plan, [dict(ts=1, k=v) for v in values]),
          {"o": [int(c) for c in encoder.transform(column)[:, 0]]})


def test_editor_signatures_name_one_parameter_per_argument():
    """Signature help counts parameters by commas, so a list argument is one named parameter."""
    from astra.lsp.operators import signatures

    labels = {n: signatures()[n].label for n in ("log1p", "expm1", "bucketize", "ordinal", "one_hot")}
    assert labels == {"log1p": "log1p(x)", "expm1": "expm1(x)", "bucketize": "bucketize(x, boundaries)",
                      "ordinal": "ordinal(x, categories[, unseen])", "one_hot": "one_hot(x, c)"}
