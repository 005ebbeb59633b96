"""Property test: `Store.get(validity=True)` bounds how long an answer stays the same.

For random programs and data, every query's `valid_until` must be the same from both generated
plans, at least the query time, and honest: at any later time up to it (the bound itself, a time
in between) the store gives the very same answer.  (Moving the bound one µs later makes this
test fail: rows on window edges are in the generated data.)
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies_plan import Case, cases
from test_online_property import _visible_rows, identical

from astra.online import Store
from astra.online.view import NEVER


def _answer(store: Store, row: dict, t: int) -> tuple:
    got = store.get("svc@v1", [row], at=t, request=[{"amount": row["amount"]}], validity=True)
    return got.tuples()[0], got.missing_outputs()[0], got.valid_until[0]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(cases(), st.data())
def test_answers_hold_until_valid_until(case: Case, data) -> None:
    store = Store(case.plan, allowed_lateness=10**9)
    for src in ("ev", "snap"):
        rows = _visible_rows(case, src)
        if rows:
            store.push(src, rows)
    spine = case.spine
    at, req = [r["ts"] for r in spine], [{"amount": r["amount"]} for r in spine]
    q = store.query("svc@v1", spine, at, req, validity=True)
    batch = store._lookup(q, single=False).valid_until
    single = store._lookup(q, single=True).valid_until
    every = store.get("svc@v1", spine, at=at, request=req, validity=True).valid_until
    assert every is not None and len(every) == len(spine)
    for row, t0 in zip(spine, at):
        value, missing, until = _answer(store, row, t0)
        assert until >= t0
        if until == NEVER:
            until = t0 + data.draw(st.integers(0, 10**6))  # nothing stored can change it: try anywhere
        else:  # both plans bound it alike (a service reading `now` gives t0 from the store, not a plan)
            j = spine.index(row)
            assert until in (batch[j], t0) and until in (single[j], t0)
        for t in {until, data.draw(st.integers(t0, until))}:
            v, m, _ = _answer(store, row, t)
            assert identical(v, value) and m == missing, f"answer at {t} differs from {t0} (valid until {until})"
