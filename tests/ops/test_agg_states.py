"""The numpy forms of the aggregation algebras (astra/ops/aggregations/algebra.py), which the online store
calls to fold evicted rows into lifetime states, against their pure-Python forms: runs of values
(some excluded, as a `where` filter or a null excludes them) folded per slot, then merged into
earlier states, give the states the pure fold and merge give."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from astra.ops.aggregations import AGGREGATIONS

FLOATS = st.one_of(st.sampled_from([0.0, 1.5, -2.0, math.inf, -math.inf, math.nan]),
                   st.floats(-1e6, 1e6, allow_nan=False))


@st.composite
def runs(draw, values=FLOATS, max_runs: int = 5):
    """Non-empty runs of values, each value with an included flag."""
    lengths = draw(st.lists(st.integers(1, 5), min_size=1, max_size=max_runs))
    n = sum(lengths)
    xs = draw(st.lists(values, min_size=n, max_size=n))
    inc = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    cuts = np.cumsum([0, *lengths[:-1]])
    return xs, np.array(inc), cuts, lengths


def pieces(xs, inc, cuts, lengths):
    """Per run: its included values with their positions as keys."""
    for c, n in zip(cuts.tolist(), lengths):
        yield [(i, xs[i]) for i in range(c, c + n) if inc[i]]


def same(a, b) -> bool:
    return (math.isnan(a) and math.isnan(b)) if isinstance(a, float) and a != a else a == b


@settings(max_examples=200, deadline=None)
@given(runs(), runs(), st.booleans())
def test_extremes_fold_and_merge_like_the_pure_form(first, second, largest):
    alg = AGGREGATIONS["max" if largest else "min"].algebra
    # two folds of equally many slots: the first the state, the second the evicted rows after it
    n = min(len(first[3]), len(second[3]))
    states = []
    for xs, inc, cuts, lengths in (first, second):
        cuts, lengths = cuts[:n], lengths[:n]
        xs, inc = xs[:sum(lengths)], inc[:sum(lengths)]
        states.append((alg.fold_runs(np.array(xs), inc, cuts),
                       [alg.fold([v for _, v in p], [(k, k) for k, _ in p]) for p in pieces(xs, inc, cuts, lengths)]))
    (a_np, a_py), (b_np, b_py) = states
    val, has = alg.merge_arrays(a_np, b_np)
    for j in range(n):
        want = alg.finalize(alg.merge(a_py[j], b_py[j], None), None)
        assert bool(has[j]) == (want is not None)
        if want is not None:
            assert same(float(val[j]), want), (j, val[j], want)


@settings(max_examples=200, deadline=None)
@given(runs(st.integers(-5, 5)), st.booleans(), st.lists(st.booleans(), min_size=5, max_size=5))
def test_first_last_and_count_fold_like_the_pure_form(drawn, latest, had):
    xs, inc, cuts, lengths = drawn
    nearest = AGGREGATIONS["last" if latest else "first"].algebra
    count = AGGREGATIONS["count"].algebra
    at = nearest.fold_runs(np.arange(len(xs)), inc, cuts)
    counts = count.fold_runs(inc, cuts)
    old_has = np.array(had[:len(lengths)])
    take = nearest.merge_arrays(old_has, at >= 0)
    for j, p in enumerate(pieces(xs, inc, cuts, lengths)):
        state = nearest.fold([v for _, v in p], [(k, k) for k, _ in p])
        assert (at[j] >= 0) == (state is not None)
        if state is not None:
            assert xs[at[j]] == nearest.finalize(state, None) and at[j] == state[0][0]
        # an earlier state (keys before every run's) keeps first's value and yields last's
        old = ((-1, -1), 0) if had[j] else None
        merged = nearest.merge(old, state, None)
        assert bool(take[j]) == (state is not None and merged is state)  # the run's value replaces
        assert counts[j] == count.fold([v for _, v in p])


@settings(max_examples=200, deadline=None)
@given(runs(st.integers(-9, 9)), st.integers(1, 4), st.data())
def test_last_k_buffer_folds_later_rows_like_the_pure_form(drawn, k, data):
    xs, inc, cuts, lengths = drawn
    alg = AGGREGATIONS["last_k"].algebra
    m = len(lengths)
    # each slot's kept values from earlier rows (keys below every run's), newest first
    kept = [data.draw(st.lists(st.integers(100, 109), max_size=k)) for _ in range(m)]
    old = np.zeros((k, m), np.int64)
    for j, vals in enumerate(kept):
        old[:len(vals), j] = vals
    seg = np.repeat(np.arange(m), lengths)[inc]
    out, n = alg.update_runs(old, np.array([len(v) for v in kept]), np.array(xs)[inc], seg, m, k)
    for j, p in enumerate(pieces(xs, inc, cuts, lengths)):
        earlier = tuple(((-1 - r, -1 - r), v) for r, v in enumerate(kept[j]))  # newest has the largest key
        want = alg.finalize(alg.merge(earlier, alg.fold([v for _, v in p], [(i, i) for i, _ in p], k), k), k)
        assert n[j] == len(want)
        assert tuple(int(out[r][j]) for r in range(n[j])) == want


@settings(max_examples=200, deadline=None)
@given(runs(st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)), runs(st.integers(-50, 50)))
def test_shifted_power_sums_give_the_exact_variance_within_tolerance(first, second):
    alg = AGGREGATIONS["variance"].algebra
    m = min(len(first[3]), len(second[3]))
    n, shift, s1, s2 = np.zeros(m, np.int64), np.zeros(m), np.zeros(m), np.zeros(m)
    exact = [alg.empty(None) for _ in range(m)]
    for xs, inc, cuts, lengths in (first, second):  # two evictions into the same slots
        lengths = lengths[:m]
        xs, inc = np.array(xs[:sum(lengths)], np.float64), inc[:sum(lengths)]
        seg = np.repeat(np.arange(m), lengths)[inc]
        n, shift, s1, s2 = alg.update_runs(n, shift, s1, s2, xs[inc], seg, m)
        for j, p in enumerate(pieces(xs.tolist(), inc, cuts[:m], lengths)):
            exact[j] = alg.merge(exact[j], alg.fold([v for _, v in p]), None)
    for j in range(m):
        assert n[j] == exact[j][0]
        want = alg.finalize(exact[j], None)
        if want is None:
            assert n[j] < 2
            continue
        got = (s2[j] - s1[j] * s1[j] / n[j]) / (n[j] - 1)
        assert math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9 * max(1.0, abs(shift[j])) ** 2)
