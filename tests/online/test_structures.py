"""The store's range structures on segments long enough to use them (the property test's tiny
tables never fill a block): min/max sparse tables over blocks, count_distinct window ends and
compensated sums, maintained through late pushes, segment moves, eviction and compaction, and
checked against the reference interpreter."""

from __future__ import annotations

import random

import pytest
from helpers import same
from test_online_property import identical

from astra.lang.types import BOOL, FLOAT64, INT64, STRING, TIMESTAMP
from astra.online import Store
from astra.plan import ir, reference

KEY = ir.SourceKey(source="ev", columns=("uid",))
WINDOWS = (None, 50, 400, 3000)


def _plan(lifetime_extremes: bool) -> ir.Plan:
    user = ir.Entity(name="user", keys=(("uid", INT64),))
    ev = ir.Source(name="ev", kind="events", path="ev.parquet", time="ts",
                   columns=(("uid", INT64), ("ts", TIMESTAMP), ("x", FLOAT64.nullable()), ("n", INT64.nullable()),
                            ("s", STRING.nullable())), keys=(KEY,), entities=("user",))
    big = ir.Apply(op=">", args=(ir.Column(name="n", type=INT64.nullable()), ir.Const(value=0, type=INT64)),
                   type=BOOL.nullable())
    exprs = {}
    for w in WINDOWS:
        if w is None and not lifetime_extremes:
            continue
        tag = "life" if w is None else str(w)
        exprs |= {
            f"max_x_{tag}": ir.Aggregate(op="max", key=KEY, column="x", where=None, window=w, param=None,
                                         type=FLOAT64.nullable()),
            f"min_x_{tag}": ir.Aggregate(op="min", key=KEY, column="x", where=None, window=w, param=None,
                                         type=FLOAT64.nullable()),  # min and max of one input
            f"min_n_{tag}": ir.Aggregate(op="min", key=KEY, column="n", where=big, window=w, param=None,
                                         type=INT64.nullable()),
            f"distinct_s_{tag}": ir.Aggregate(op="count_distinct", key=KEY, column="s", where=None, window=w,
                                              param=None, type=INT64),
            f"distinct_n_{tag}": ir.Aggregate(op="count_distinct", key=KEY, column="n", where=big, window=w,
                                              param=None, type=INT64),
            f"sum_x_{tag}": ir.Aggregate(op="sum", key=KEY, column="x", where=None, window=w, param=None,
                                         type=FLOAT64),
            f"last_s_{tag}": ir.Aggregate(op="last", key=KEY, column="s", where=None, window=w, param=None,
                                          type=STRING.nullable()),
            f"first_s_{tag}": ir.Aggregate(op="first", key=KEY, column="s", where=None, window=w, param=None,
                                           type=STRING.nullable()),
        }
    feats = tuple(ir.Feature(id=f"g@v1.{k}", group="g", version=1, name=k, entity="user", expr=e,
                             type=e.type, default=None) for k, e in exprs.items())
    svc = ir.Service(name="svc", version=1, outputs=tuple(ir.Output(name=f.name, feature=f.id) for f in feats),
                     requests=(), entities=("user",))
    group = ir.Group(name="g", version=1, entity="user", features=tuple(f.id for f in feats))
    return ir.Plan(entities=(user,), sources=(ev,), requests=(), features=feats, groups=(group,), services=(svc,))


def _rows(rng: random.Random, n: int) -> list[dict]:
    hot = [1] * (n // 2) + [2] * (n // 3)
    uids = hot + [rng.randint(3, 30) for _ in range(n - len(hot))]
    rng.shuffle(uids)
    xs = [0.1, 1e6, 1e6 + 0.5, -3.25, 7.0, 2.5e-3, None]
    return [{"uid": u, "ts": j // 2 + rng.randint(0, 40), "x": rng.choice(xs),
             "n": rng.choice([None, -1, 0, *range(1, 40)]), "s": rng.choice([None, *"abcdefghijklmnop"])}
            for j, u in enumerate(uids)]


def _check(plan, store, rows, times):
    spine = [{"uid": u, "ts": t} for t in times for u in (1, 2, 3, 99)]
    want = reference.evaluate(plan, "svc", 1, spine, {"ev": rows})
    ents, at = [{"uid": s["uid"]} for s in spine], [s["ts"] for s in spine]
    got = store.get("svc@v1", ents, at=at).rows()
    single = [store.get("svc@v1", [{"uid": s["uid"]}], at=s["ts"]).rows()[0] for s in spine[:8]]
    for g, w in zip(got + single, want + want[:8]):
        for o in plan.services[0].outputs:
            assert same(g[o.name], w[o.name]), f"{o.name} at {w['uid']}, {w['ts']}: {g[o.name]!r} vs {w[o.name]!r}"
    # the single-entity plan on every query (long windows: block sparse tables) agrees exactly
    q = store.query("svc@v1", ents, at)
    batch, one = store._lookup(q, single=False).rows(), store._lookup(q, single=True).rows()
    for b, s1 in zip(batch, one):
        assert all(identical(b[k], s1[k]) for k in b), (b, s1)


@pytest.mark.parametrize("seed", range(3))
def test_structures_with_late_pushes(seed):
    """Out-of-order batches with a huge allowed lateness: no eviction, merges inside segments."""
    rng = random.Random(seed)
    rows = _rows(rng, 3000)
    plan = _plan(lifetime_extremes=True)
    store = Store(plan, allowed_lateness=10**9)
    i = 0
    while i < len(rows):
        k = rng.choice([1, 7, 60, 400])
        store.push("ev", rows[i:i + k])
        i += k
    _check(plan, store, rows, [0, 100, 700, 1200, 1600])


@pytest.mark.parametrize("seed", range(2))
def test_structures_with_single_row_pushes(seed):
    """In-order rows pushed one at a time take the append fast path (O(1) prefix updates, blocks
    completed one by one, count_distinct ends updated in place, full segments moved); a store fed
    the same rows in one batch answers the same."""
    rng = random.Random(seed)
    rows = sorted(_rows(rng, 2500), key=lambda r: r["ts"])
    plan = _plan(lifetime_extremes=True)
    store, bulk = Store(plan, allowed_lateness=10**9), Store(plan, allowed_lateness=10**9)
    bulk.push("ev", rows[:1000])
    store.push("ev", rows[:1000])
    for r in rows[1000:]:
        store.push("ev", [r])
    bulk.push("ev", rows[1000:])
    assert store.tables[0].holes > 0  # segments moved to grow
    end = rows[-1]["ts"] + 1
    _check(plan, store, rows, [rows[1500]["ts"], end, end + 40])
    spine = [{"uid": u} for u in (1, 2, 3, 7, 99)]
    for t in (rows[1200]["ts"], end, end + 2000):
        a = store.get("svc@v1", spine, at=t).rows()
        b = bulk.get("svc@v1", spine, at=t).rows()
        for x, y in zip(a, b):
            assert all(same(x[k], y[k]) for k in x), (x, y)


@pytest.mark.parametrize("seed", range(3))
def test_structures_with_eviction(seed):
    """Time-ordered pushes with eviction and compaction; queries after the horizon."""
    rng = random.Random(seed)
    rows = sorted(_rows(rng, 4000), key=lambda r: r["ts"])
    plan = _plan(lifetime_extremes=False)
    store = Store(plan, allowed_lateness=5)
    i = 0
    while i < len(rows):
        k = rng.choice([1, 30, 250])
        store.push("ev", rows[i:i + k])
        i += k
    end = rows[-1]["ts"] + 1
    assert store.horizon is not None and store.tables[0].cutoff is not None
    _check(plan, store, rows, [end, end + 40, end + 300])


def test_int64_columns_widen_when_values_leave_int32(tmp_path):
    """Integer columns are stored narrow until a value needs 64 bits; then every structure
    (values, block extremes, evicted state, save/load) carries on at full width."""
    rng = random.Random(5)
    rows = _rows(rng, 1500)
    plan = _plan(lifetime_extremes=True)
    store = Store(plan, allowed_lateness=10**9)
    store.push("ev", rows[:700])
    for r in rows[700:]:
        if r["n"] is not None and r["n"] > 20:
            r["n"] = r["n"] * 2**40 * (-1 if r["n"] % 2 else 1)
    store.save(tmp_path / "narrow")
    store.push("ev", rows[700:])
    assert "n" not in store.tables[0].narrow
    _check(plan, store, rows, [100, 900])
    loaded = Store.load(tmp_path / "narrow", plan)
    loaded.push("ev", rows[700:])
    _check(plan, loaded, rows, [900])
