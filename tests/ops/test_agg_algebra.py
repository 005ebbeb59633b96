"""The algebra of every aggregation (astra/ops/aggregations/algebra.py), checked against its reference.

For random rows (values with their (time, arrival) keys) split at random into parts:
- finalize(fold(rows)) and finalize(merge of the parts' folds) equal the reference of the rows;
- merge is commutative and associative on the states themselves (order-dependent states keep
  their rows' keys, so no merge depends on its operands' order);
- subtract(fold(a + b), fold(b)) == fold(a) for the invertible ones, state for state.
Equality is exact: floats compare by their bits (NaN equal to NaN)."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from astra.ops.aggregations import AGGREGATIONS

INT64 = st.integers(-(1 << 63), (1 << 63) - 1)
SMALL_INTS = st.integers(-3, 3)  # many ties and repeats
FLOATS = st.one_of(st.sampled_from([0.0, -0.0, 1.5, -2.0, 1e308, -1e308, 5e-324]),
                   st.floats(-1e6, 1e6, allow_nan=False, width=64))
SPECIALS = st.one_of(FLOATS, st.sampled_from([math.nan, math.inf, -math.inf]))
STRINGS = st.text(alphabet="abé\u00ff", max_size=3)
FRACTIONS = st.sampled_from([0.0, 0.25, 0.5, 0.9, 1.0])

# per aggregation: (values, param) strategies over the column types it accepts
CASES: dict[str, list[tuple]] = {
    "count": [(INT64, st.none()), (st.just(True), st.none())],  # count(col), count(*)'s row markers
    "sum": [(INT64, st.none()), (SPECIALS, st.none())],
    "mean": [(INT64, st.none()), (SPECIALS, st.none())],
    "min": [(SMALL_INTS, st.none()), (SPECIALS, st.none()), (STRINGS, st.none())],
    "max": [(SMALL_INTS, st.none()), (SPECIALS, st.none()), (STRINGS, st.none())],
    "first": [(SMALL_INTS, st.none()), (STRINGS, st.none())],
    "last": [(SMALL_INTS, st.none()), (SPECIALS, st.none())],
    "count_distinct": [(SMALL_INTS, st.none()), (STRINGS, st.none()), (st.booleans(), st.none())],
    "variance": [(SMALL_INTS, st.none()), (INT64, st.none()), (SPECIALS, st.none())],
    "stddev": [(SMALL_INTS, st.none()), (SPECIALS, st.none())],
    "skew": [(SMALL_INTS, st.none()), (SPECIALS, st.none())],
    "kurtosis": [(SMALL_INTS, st.none()), (SPECIALS, st.none())],
    "last_k": [(SMALL_INTS, st.integers(1, 4)), (STRINGS, st.integers(1, 4))],
    "first_k": [(SMALL_INTS, st.integers(1, 4)), (SPECIALS, st.integers(1, 4))],
    "top_k": [(SMALL_INTS, st.integers(1, 4)), (SPECIALS, st.integers(1, 4)), (STRINGS, st.integers(1, 4))],
    "bottom_k": [(SMALL_INTS, st.integers(1, 4)), (SPECIALS, st.integers(1, 4))],
    "median": [(SMALL_INTS, st.none()), (SPECIALS, st.none())],
    "percentile": [(SMALL_INTS, FRACTIONS), (SPECIALS, FRACTIONS)],
    "exp_decay_sum": [(FLOATS, st.sampled_from([1, 1000, 3_600_000_000]))],
    "approx_count_distinct": [(SMALL_INTS, st.none()), (STRINGS, st.none())],
    "approx_percentile": [(SPECIALS, FRACTIONS)],
    "mode": [(SMALL_INTS, st.none()), (STRINGS, st.none()), (st.booleans(), st.none())],
    "histogram": [(SMALL_INTS, st.lists(SMALL_INTS, min_size=1, max_size=4, unique=True).map(tuple)),
                  (STRINGS, st.sampled_from([("a",), ("", "b", "é")])), (st.booleans(), st.just((True, False)))],
}


def test_every_aggregation_declares_an_algebra_and_is_covered_here():
    assert set(CASES) == set(AGGREGATIONS), "a new aggregation needs its algebra cases here"
    for name, agg in AGGREGATIONS.items():
        assert agg.algebra is not None, name


@st.composite
def rows(draw, values):
    """Rows as (key, value) in key order (some nulls), and a random part (0, 1 or 2) for each."""
    xs = draw(st.lists(st.one_of(st.none(), values), max_size=10))
    times = sorted(draw(st.lists(st.integers(0, 5_000_000), min_size=len(xs), max_size=len(xs))))
    keys = [(t, i) for i, t in enumerate(times)]  # (time, arrival): ties keep their arrival order
    parts = draw(st.lists(st.integers(0, 2), min_size=len(xs), max_size=len(xs)))
    return keys, xs, parts


def canon(x):
    """A state or value with floats as their bits, so NaN equals NaN and 0.0 differs from -0.0."""
    if isinstance(x, float):
        return ("float", "nan" if math.isnan(x) else x.hex())
    if isinstance(x, tuple | list):
        return tuple(canon(v) for v in x)
    if isinstance(x, Fraction):
        return ("q", x.numerator, x.denominator)
    return x


def reference(agg, keys, xs, param, at):
    if agg.algebra.reads_time:
        return agg.reference_at(xs, [k[0] for k in keys], at, param)
    return agg.reference(xs, param)


def fold(alg, keys, xs, parts, which, param):
    pick = [i for i, p in enumerate(parts) if p in which]
    return alg.fold([xs[i] for i in pick], [keys[i] for i in pick], param)


def same_float(a, b) -> bool:
    return canon(a) == canon(b)


@pytest.mark.parametrize("name,case", [(n, i) for n, cases in CASES.items() for i in range(len(cases))])
def test_algebra_laws(name, case):
    agg = AGGREGATIONS[name]
    alg = agg.algebra
    values, params = CASES[name][case]

    @settings(max_examples=60 if name.startswith("approx") else 150, deadline=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(rows(values), params)
    def check(drawn, param):
        keys, xs, parts = drawn
        at = 6_000_000  # the query time: after every row
        want = canon(reference(agg, keys, xs, param, at))
        whole = alg.fold(xs, keys, param)
        assert canon(alg.finalize(whole, param, at)) == want
        a, b, c = (fold(alg, keys, xs, parts, {p}, param) for p in (0, 1, 2))
        ab, ba = alg.merge(a, b, param), alg.merge(b, a, param)
        assert canon(ab) == canon(ba)  # commutative, keys and all
        left, right = alg.merge(ab, c, param), alg.merge(a, alg.merge(b, c, param), param)
        assert canon(left) == canon(right)  # associative
        assert canon(left) == canon(whole)  # the parts merged are the whole
        assert canon(alg.finalize(left, param, at)) == want
        assert canon(alg.merge(alg.empty(param), a, param)) == canon(a)  # empty is the identity
        if alg.invertible:
            assert canon(alg.subtract(whole, c, param)) == canon(ab)
            assert canon(alg.subtract(ab, b, param)) == canon(a)

    check()


def test_order_dependent_states_merge_by_key_not_operand_order():
    """last over two parts whose later rows sit in the first operand (a late part merged first)."""
    alg = AGGREGATIONS["last"].algebra
    late = alg.fold([7], [(10, 3)], None)
    early = alg.fold([1, 2], [(1, 0), (2, 1)], None)
    assert alg.finalize(alg.merge(late, early, None), None) == 7
    assert alg.finalize(alg.merge(early, late, None), None) == 7


def test_subtract_is_refused_where_no_inverse_exists():
    alg = AGGREGATIONS["max"].algebra
    assert not alg.invertible
    with pytest.raises(TypeError):
        alg.subtract(alg.fold([1, 2]), alg.fold([2]), None)


def test_int_sums_wrap_only_when_finalized():
    """The exact total is kept: adding past int64 and subtracting back gives the exact state."""
    alg = AGGREGATIONS["sum"].algebra
    big = (1 << 63) - 1
    s = alg.fold([big, 1])
    assert alg.finalize(s, None) == -(1 << 63)  # wrapped, semantics rule 11
    assert alg.finalize(alg.subtract(s, alg.fold([1]), None), None) == big
