"""A push costs what its rows change, not the entity's history (docs/online.md, "The store").

Two properties, neither timed:
- the incremental structures after any sequence of pushes (in-order rows one at a time or in
  batches, late rows, eviction) are the ones rebuilt from the retained rows: count_distinct ends,
  prefix counts, and a float sum's running sums and the premises of its error bounds;
- the work a push does on count_distinct ends (rows whose end is recomputed or compared) stays
  bounded by the rows of its window as the entity's history grows tenfold.
"""

from __future__ import annotations

import numpy as np
import pytest
from agg_engines import compile_features
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from astra.online import Store, distinct_ends
from astra.online.arrays import ranges

S = 1_000_000  # µs
T = 10**6 * S

PLAN = compile_features("x: int64?  a: float64?", """
    d10: int64 = count_distinct(ev.x, 10s)
    d40: int64 = count_distinct(ev.x where a > 0.0, 40s)
    s20: float64 = sum(ev.a, 20s)
    c30: int64 = count(ev.a, 30s)
    m30: float64? = max(ev.a, 30s)""")
# a lifetime count_distinct (never evicted) beside windowed ones over the same input
LIFETIME = compile_features("x: int64?  a: float64?", """
    dl: int64 = count_distinct(ev.x)
    d10: int64 = count_distinct(ev.x, 10s)
    dlw: int64 = count_distinct(ev.x where a > 0.0)""")


def _check(store: Store) -> None:
    """Every structure of the store's table equals the one rebuilt from its retained rows."""
    (tb,) = store.tables
    S_ = tb.slot
    st_, ln = S_["start"][1:tb.n_slots].astype(np.int64), S_["len"][1:tb.n_slots].astype(np.int64)
    live = ln > 0
    st_, ln, slots = st_[live], ln[live], np.flatnonzero(live) + 1
    rows = ranges(st_, ln)
    before = {k: a[rows].copy() for k, a in tb.pos.items() if k.startswith(("dend:", "cnt:"))}
    for i, inp in enumerate(tb.inputs):
        if inp.windows:
            tb._rebuild_ends(i, inp, st_, ln, inp.windows)
        if f"cnt:{i}" in tb.pos:  # prefix counts from each segment's start
            inc = tb.included(i, rows).astype(np.int64)
            c = np.cumsum(inc)
            starts = np.cumsum(ln) - ln
            tb.pos[f"cnt:{i}"][rows] = c - np.repeat(np.where(starts > 0, c[starts - 1], 0), ln)
        if f"shm:{i}" in S_:
            _check_float_sums(tb, i, st_, ln, slots)
    for k, want in before.items():
        assert np.array_equal(tb.pos[k][rows], want), k
    for i, index in tb.last_seen.items():  # per long segment: its values and their latest included rows
        for s, a, n in zip(slots.tolist(), st_.tolist(), ln.tolist()):
            if s in index:
                idx = np.arange(a, a + n)
                inc = tb.included(i, idx)
                vals, times = tb.pos[f"v:{tb.inputs[i].column}"][idx][inc], tb.pos["time"][idx][inc]
                latest = dict(zip(vals.tolist(), times.tolist()))  # in time order: the latest wins
                values, last = index[s]
                assert dict(zip(values.tolist(), last.tolist())) == latest
    for i, (held, known) in tb.distinct_values.items():  # the values a lifetime append asks about
        for s, a, n in zip(slots.tolist(), st_.tolist(), ln.tolist()):
            if s in known:
                idx = np.arange(a, a + n)
                vals = tb.pos[f"v:{tb.inputs[i].column}"][idx][tb.included(i, idx)]
                assert {q for q in held if q >> 64 == s} == {(s << 64) | (x % 2**64) for x in vals.tolist()}


def _check_float_sums(tb, i: int, st_, ln, slots) -> None:
    """Each segment's float prefixes are its included values summed in order from its start, one
    rounding a step (exactly `np.cumsum`); per slot, `shm` bounds every |prefix| and `sem` every
    exact |sum of the step errors so far| (the sum of the values minus the prefix), up to the
    bound's slack; an infinite or NaN prefix makes the bound NaN or infinite ("sum again")."""
    from fractions import Fraction

    from astra.online.exact_sums import SLACK

    for s, n, slot in zip(st_.tolist(), ln.tolist(), slots.tolist()):
        rows = np.arange(s, s + n)
        x = np.where(tb.included(i, rows), tb.pos[f"v:{tb.inputs[i].column}"][rows], 0.0)
        hi = tb.pos[f"shi:{i}"][rows]
        assert np.array_equal(hi, np.cumsum(x), equal_nan=True)
        shm, sem = float(tb.slot[f"shm:{i}"][slot]), float(tb.slot[f"sem:{i}"][slot])
        if not np.isfinite(hi).all():
            assert not (np.isfinite(shm) and np.isfinite(sem))
            continue
        assert np.abs(hi).max() <= shm
        exact = Fraction(0)
        for v, h in zip(x.tolist(), hi.tolist()):
            exact += Fraction(v)
            assert abs(exact - Fraction(h)) <= Fraction(sem) * (1 + Fraction(SLACK))


@st.composite
def pushes(draw):
    """Batches of rows of entities 1..3: mostly in time order, some late, some single rows."""
    out, t = [], T
    for _ in range(draw(st.integers(1, 25))):
        t += draw(st.integers(0, 8)) * S
        n = draw(st.sampled_from([1, 1, 2, 5, 12]))
        late = draw(st.booleans()) and draw(st.booleans())
        batch = []
        for _ in range(n):
            ts = t - draw(st.integers(0, 20)) * S if late else t + draw(st.integers(0, 3)) * S
            batch.append(dict(id=draw(st.integers(1, 3)), ts=ts, x=draw(st.one_of(st.none(), st.integers(0, 4))),
                              a=draw(st.one_of(st.none(), st.sampled_from([-1.5, 0.1, 2.0, 1e16, 3.25])))))
        out.append(sorted(batch, key=lambda r: r["ts"]) if not late else batch)
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pushes(), st.sampled_from([10**15, 25 * S]), st.sampled_from([0, distinct_ends.REBUILD_ROWS]),
       st.sampled_from([PLAN, LIFETIME]), st.sampled_from([0, 3, distinct_ends.LONG_WINDOW]),
       st.sampled_from([0, 2, distinct_ends.ONE_ROW]))
def test_incremental_structures_equal_rebuilt_ones(batches, lateness, rebuild_rows, plan, long_window, one_row):
    """(`rebuild_rows` 0: short segments take the incremental path too; `long_window` 0 or 3:
    windows holding more rows than that take the indexed path, `LastSeen`; `one_row` 0 or 2: a
    row appended alone to a longer segment takes the scalar path.)"""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(distinct_ends, "REBUILD_ROWS", rebuild_rows)
        mp.setattr(distinct_ends, "LONG_WINDOW", long_window)
        mp.setattr(distinct_ends, "ONE_ROW", one_row)
        store = Store(plan, allowed_lateness=lateness)
        for b in batches:
            store.push("ev", b, on_late="report")
            _check(store)


def _touched_per_push(batch: int, pushes: int, feature: str = "count_distinct(ev.x, 30s)") -> list[int]:
    """Rows of count_distinct work per push of `batch` rows to one entity, a row a second (a
    value among 7, so earlier rows recur), over `pushes` pushes."""
    store = Store(compile_features("x: int64", f"""
    d: int64 = {feature}
    c: int64 = count(ev, 1d)"""))  # the day-long count keeps the whole history retained
    (tb,) = store.tables
    out, t = [], T
    for _ in range(pushes):
        rows = [dict(id=1, ts=t + j * S, x=(t // S + j) % 7) for j in range(batch)]
        t += batch * S
        before = tb.ends_touched
        store.push("ev", rows)
        out.append(tb.ends_touched - before)
    assert int(tb.slot["len"][1]) == batch * pushes  # nothing evicted: the history keeps growing
    return out


def test_count_distinct_work_does_not_grow_with_history():
    for batch, pushes in ((1, 2000), (50, 80)):  # the append path, and the vectorised insert
        work = _touched_per_push(batch, pushes)
        window = 30 + batch  # rows within the window of the push's rows, and the rows themselves
        # short segments are rebuilt whole (up to 32 rows per pushed row): a constant too
        assert max(work[pushes // 10:]) <= max(2 * window, 32 * batch), (batch, max(work))
        # ten times the history, the same work
        assert max(work[-pushes // 10:]) <= max(work[pushes // 10:2 * pushes // 10]) + 1


@pytest.mark.parametrize("batch, pushes", [(1, 20_000), (50, 800)])
def test_long_window_count_distinct_work_does_not_grow_with_history(batch, pushes):
    """A window longer than the whole history (a hot entity under a live push stream): once its
    values are indexed (read once), a push looks up its own values and moves the sorted ends,
    so its work is its rows times a logarithm, not the window's rows."""
    work = _touched_per_push(batch, pushes, "count_distinct(ev.x, 1d)")
    rows = batch * pushes
    assert rows > 8 * distinct_ends.LONG_WINDOW  # the window holds all of a long history
    late = max(work[-pushes // 10:])
    assert late <= (2 * batch + 14) * 20, (batch, late)  # rows and values, times log2 of the history
    assert late < rows // 20  # far below reading the window


@pytest.mark.parametrize("batch, pushes", [(1, 2000), (50, 80)])
@pytest.mark.parametrize("feature", ["count_distinct(ev.x)", "count_distinct(ev.x where x > 2)"])
def test_lifetime_count_distinct_work_does_not_grow_with_history(batch, pushes, feature):
    """A lifetime window has no bound on how far back a value's previous row is: a push still
    costs its own rows (plus, once per entity, reading which values it holds), not its history."""
    work = _touched_per_push(batch, pushes, feature)
    late = max(work[-pushes // 10:])
    # short segments are rebuilt whole (up to 32 rows per pushed row); past that, the rows
    # themselves and one changed end each
    assert late <= 2 * batch + 1, (batch, late, work[-5:])


@pytest.mark.parametrize("column, values", [
    ("s: string?", ["b", "a", None, "b", "c", "a", "", "c"]),
    ("s: bool?", [True, False, None, True, True, False, None, False]),
    ("s: int64?", [2**62, -(2**62), None, 0, -1, 2**62, -1, 7]),
])
def test_lifetime_count_distinct_appended_one_by_one_equals_pushed_at_once(column, values):
    """Every value kind the held-values set keys (string codes, bools, wide ints), with a filter."""
    plan = compile_features(column + "  k: int64", """
    d: int64 = count_distinct(ev.s)
    dk: int64 = count_distinct(ev.s where k > 0)""")
    rows = [dict(id=1 + j % 2, ts=T + j * S, s=values[j % len(values)], k=(j * 5) % 3 - 1) for j in range(60)]
    one, whole = Store(plan), Store(plan)
    whole.push("ev", rows)
    for r in rows:
        one.push("ev", [r])
        _check(one)
    for at in (T + 5 * S, T + 30 * S, T + 61 * S):
        q = [{"id": 1}, {"id": 2}]
        assert one.get("svc@v1", q, at=at).rows() == whole.get("svc@v1", q, at=at).rows()
    # by hand: entity 1 holds rows 0, 2, 4, ...: values[0, 2, 4, 6] repeat, nulls not counted
    held = {values[j] for j in range(0, len(values), 2)} - {None}
    assert one.get("svc@v1", [{"id": 1}], at=T + 61 * S).rows()[0]["d"] == len(held)
