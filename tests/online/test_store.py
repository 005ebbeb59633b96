"""Hand-written behaviour of the online store: eviction, lateness, unknown entities, composite
keys, snapshots, request inputs, the horizon, save/load and errors."""

from __future__ import annotations

import math

import polars as pl
import pytest

from astra.lang.types import FLOAT64, INT64, STRING, TIMESTAMP, Type
from astra.online import HorizonError, LateRowError, SchemaError, Store, UnknownServiceError, compile_service
from astra.plan import ir

KEYS = (("uid", INT64), ("region", STRING))


def make_plan(composite: bool = False) -> ir.Plan:
    keys = KEYS if composite else KEYS[:1]
    kcols = tuple(k for k, _ in keys)
    user = ir.Entity(name="user", keys=keys)
    ek, sk = ir.SourceKey(source="ev", columns=kcols), ir.SourceKey(source="snap", columns=kcols)
    ev = ir.Source(name="ev", kind="events", path="ev.parquet", time="ts",
                   columns=(*keys, ("ts", TIMESTAMP), ("x", FLOAT64.nullable()), ("s", STRING.nullable())),
                   keys=(ek,), entities=("user",))
    snap = ir.Source(name="snap", kind="snapshot", path="snap.parquet", time="at",
                     columns=(*keys, ("at", TIMESTAMP), ("c", STRING.nullable())), keys=(sk,), entities=("user",))
    req = ir.Request(name="req", fields=(("amount", FLOAT64.nullable()),))

    def agg(op, col, window, t, where=None):
        return ir.Aggregate(op=op, key=ek, column=col, where=where, window=window, param=None, type=t)

    exprs = {
        "n10": (agg("count", None, 10, INT64), INT64),
        "sum10": (agg("sum", "x", 10, FLOAT64), FLOAT64),
        "n_life": (agg("count", None, None, INT64), INT64),
        "sum_life": (agg("sum", "x", None, FLOAT64), FLOAT64),
        "first_life": (agg("first", "s", None, STRING.nullable()), STRING.nullable()),
        "min_life": (agg("min", "x", None, FLOAT64.nullable()), FLOAT64.nullable()),
        "max_life": (agg("max", "x", None, FLOAT64.nullable()), FLOAT64.nullable()),
        "var_life": (agg("variance", "x", None, FLOAT64.nullable()), FLOAT64.nullable()),
        "smin_life": (agg("min", "s", None, STRING.nullable()), STRING.nullable()),
        "smax_life": (agg("max", "s", None, STRING.nullable()), STRING.nullable()),
        "last3_life": (ir.Aggregate(op="last_k", key=ek, column="s", where=None, window=None, param=3,
                                    type=Type.list_of(STRING)), Type.list_of(STRING)),
        "last10": (agg("last", "s", 10, STRING.nullable()), STRING.nullable()),
        "c": (ir.AsOf(key=sk, column="c", type=STRING.nullable()), STRING.nullable()),
        "ratio": (ir.Apply(op="/", args=(ir.RequestInput(request="req", field="amount", type=FLOAT64.nullable()),
                                         agg("sum", "x", 10, FLOAT64)), type=FLOAT64.nullable()),
                  FLOAT64.nullable()),
    }
    feats = tuple(ir.Feature(id=f"g@v1.{n}", group="g", version=1, name=n, entity="user", expr=e, type=t,
                             default=-1.0 if n == "ratio" else None) for n, (e, t) in exprs.items())
    svc = ir.Service(name="svc", version=1, outputs=tuple(ir.Output(name=f.name, feature=f.id) for f in feats),
                     requests=("req",), entities=("user",))
    group = ir.Group(name="g", version=1, entity="user", features=tuple(f.id for f in feats))
    return ir.Plan(entities=(user,), sources=(ev, snap), requests=(req,), features=feats, groups=(group,),
                   services=(svc,))


def ev(uid, ts, x=1.0, s="a"):
    return {"uid": uid, "ts": ts, "x": x, "s": s}


def get(store, uid, at, **kw):
    return store.get("svc@v1", [{"uid": uid}], at=at, **kw).rows()[0]


def test_windows_and_strictly_before():
    store = Store(make_plan())
    store.push("ev", [ev(1, 0, 1.0), ev(1, 5, 2.0), ev(1, 10, 4.0)])
    r = get(store, 1, 10)
    assert (r["n10"], r["sum10"], r["n_life"]) == (2, 3.0, 2)  # the row at exactly t is invisible
    assert (get(store, 1, 11)["n10"], get(store, 1, 11)["n_life"]) == (2, 3)  # [1, 11)
    assert get(store, 1, 15)["sum10"] == 6.0  # [5, 15)


def test_late_rows_are_placed_and_too_late_rows_rejected():
    store = Store(make_plan(), allowed_lateness=5)
    store.push("ev", [ev(1, 10, 1.0, "a"), ev(1, 12, 2.0, "b")])
    store.push("ev", [ev(1, 7, 4.0, "late")])  # within lateness: goes before the others
    assert get(store, 1, 11)["last10"] == "a"
    assert get(store, 1, 8)["last10"] == "late"
    store.push("ev", [ev(1, 10, 8.0, "tie")])  # a tie: arrival order decides, it is the later row
    assert get(store, 1, 11)["last10"] == "tie"
    with pytest.raises(LateRowError, match="too late"):
        store.push("ev", [ev(1, 6, 1.0), ev(1, 20, 1.0)])
    assert get(store, 1, 100)["n_life"] == 4  # nothing from the rejected batch was stored
    rep = store.push("ev", [ev(1, 6, 1.0), ev(1, 20, 1.0)], on_late="report")
    assert rep.accepted == 1 and rep.rejected == [(0, 6, 7)]


def test_eviction_keeps_lifetime_state_and_sets_horizon():
    store = Store(make_plan())
    store.push("ev", [ev(1, t, float(t), f"s{t}") for t in range(0, 100)])
    store.push("snap", [{"uid": 1, "at": 3, "c": "old"}, {"uid": 1, "at": 50, "c": "new"}])
    assert store.horizon is not None and store.horizon <= 100
    assert store.tables[0].slot["len"][1] < 100  # rows were evicted
    r = get(store, 1, 100)
    assert (r["n_life"], r["sum_life"], r["first_life"]) == (100, float(sum(range(100))), "s0")
    assert (r["n10"], r["sum10"], r["last10"]) == (10, float(sum(range(90, 100))), "s99")
    # lifetime extremes: the smallest value (0.0, at t=0) was evicted and folded into the slot
    batch = store.get("svc@v1", [{"uid": 1}] * 9, at=100).rows()  # 9 entities: the vectorised plan
    for row in (r, batch[0], batch[8]):
        assert (row["min_life"], row["max_life"]) == (0.0, 99.0)
    assert r["last3_life"] == ("s99", "s98", "s97")  # all retained
    # evicted extremes combine with earlier ones (a later one wins only when it is more extreme);
    # nulls never count.  Times 100-120 evict 89-109: the new evicted values (89-99, 1.0) must not
    # replace the 0.0 evicted before; the retained rows then hold only 1.0 and null.
    store.push("ev", [ev(1, 100, None)] + [ev(1, t, 1.0) for t in range(101, 121)])
    assert store.tables[0].slot["start"][1] > 99  # 99.0 is evicted too
    batch = store.get("svc@v1", [{"uid": 1}] * 9, at=121).rows()
    for row in (get(store, 1, 121), batch[4]):
        assert (row["min_life"], row["max_life"], row["n_life"]) == (0.0, 99.0, 121)
    store.push("ev", [ev(1, 121, -5.0)] + [ev(1, t, 1.0) for t in range(122, 300)])  # evicts -5.0
    batch = store.get("svc@v1", [{"uid": 1}] * 9, at=300).rows()
    for row in (get(store, 1, 300), batch[3]):
        assert (row["min_life"], row["max_life"], row["n_life"]) == (-5.0, 99.0, 300)
    with pytest.raises(HorizonError, match="horizon"):
        get(store, 1, 0)


def test_lifetime_last_k_and_string_extremes_keep_evicted_values():
    store = Store(make_plan())  # retention: the 10 µs window, so rows older than watermark - 10 go

    def life(at):
        single = get(store, 1, at)
        batch = store.get("svc@v1", [{"uid": 1}] * 9, at=at).rows()[5]  # the vectorised plan
        names = ("last3_life", "smin_life", "smax_life")
        assert [single[k] for k in names] == [batch[k] for k in names]
        return tuple(single[k] for k in names)

    store.push("ev", [ev(1, t, s=None if t == 5 else f"b{t}") for t in range(10)])
    store.push("ev", [ev(1, t, s=None) for t in range(10, 31)])  # evicts t < 20: b0-b9 (b5 is null)
    assert store.tables[0].slot["start"][1] >= 20
    assert life(31) == (("b9", "b8", "b7"), "b0", "b9")  # the retained rows hold only nulls
    store.push("ev", [ev(1, 31, s="c31")] + [ev(1, t, s=None) for t in range(32, 51)])  # evicts c31 too
    assert life(51) == (("c31", "b9", "b8"), "b0", "c31")  # newly evicted first, then those kept before
    store.push("ev", [ev(1, 51, s="a51")] + [ev(1, t, s=None) for t in range(52, 70)])  # evicts a51
    assert life(70) == (("a51", "c31", "b9"), "a51", "c31")  # a later string that sorts first
    store.push("ev", [ev(1, 70, s="d70")])
    assert life(71) == (("d70", "a51", "c31"), "a51", "d70")  # retained values first


def test_lifetime_variance_folds_evicted_moments():
    import statistics

    store = Store(make_plan())

    def var(at):
        single = get(store, 1, at)["var_life"]
        batch = store.get("svc@v1", [{"uid": 1}] * 9, at=at).rows()[2]["var_life"]
        assert single == batch
        return single

    store.push("ev", [ev(1, t, float(t + 1)) for t in range(20)])  # 1 .. 20
    store.push("ev", [ev(1, t, None) for t in range(20, 36)])  # evicts every valued row
    assert store.tables[0].slot["start"][1] >= 20
    assert math.isclose(var(36), statistics.variance(range(1, 21)), rel_tol=1e-12)  # 35
    store.push("ev", [ev(1, 36, 100.0)])  # retained and evicted values together
    want = statistics.variance([*range(1, 21), 100])
    assert math.isclose(var(37), want, rel_tol=1e-12)
    store.push("ev", [ev(1, t, None) for t in range(37, 61)])  # evicts 100.0: two folds combined
    assert math.isclose(var(61), want, rel_tol=1e-12)


def test_snapshot_as_of_moves_and_survives_eviction():
    store = Store(make_plan(), allowed_lateness=10)
    store.push("snap", [{"uid": 1, "at": 5, "c": "a"}, {"uid": 1, "at": 5, "c": "b"}, {"uid": 1, "at": 9, "c": None}])
    assert get(store, 1, 5)["c"] is None
    assert get(store, 1, 6)["c"] == "b"  # tie on time: the later row wins
    assert get(store, 1, 10)["c"] is None  # the latest row's value, null included
    store.push("snap", [{"uid": 2, "at": 1000, "c": "z"}])  # advances the watermark: old rows evicted
    assert get(store, 1, 1000)["c"] is None and get(store, 2, 1001)["c"] == "z"


def test_unknown_entities_get_empty_values_and_missing_flag():
    store = Store(make_plan())
    store.push("ev", [ev(1, 0)])
    rows = store.get("svc@v1", [{"uid": 1}, {"uid": 99}], at=5, request={"amount": 2.0}).rows()
    assert rows[0]["_missing"] is False and rows[1]["_missing"] is True
    assert (rows[1]["n10"], rows[1]["sum10"], rows[1]["c"], rows[1]["ratio"]) == (0, 0.0, None, -1.0)


def test_composite_keys():
    store = Store(make_plan(composite=True))
    store.push("ev", [{"uid": 1, "region": "a", "ts": 0, "x": 1.0}, {"uid": 1, "region": "b", "ts": 0, "x": 2.0}])
    got = store.get("svc@v1", [{"uid": 1, "region": "b"}, {"uid": 1, "region": "c"}], at=1).rows()
    assert got[0]["sum10"] == 2.0 and got[1]["_missing"]


def test_request_inputs_scalar_and_per_entity():
    store = Store(make_plan())
    store.push("ev", [ev(1, 0, 4.0), ev(2, 0, 2.0)])
    ents = [{"uid": 1}, {"uid": 2}]
    assert [r["ratio"] for r in store.get("svc@v1", ents, at=1, request={"amount": 8.0}).rows()] == [2.0, 4.0]
    per = store.get("svc@v1", ents, at=1, request=[{"amount": 1.0}, {"amount": None}]).rows()
    assert [r["ratio"] for r in per] == [0.25, -1.0]  # null -> the declared default


def test_save_load_round_trip(tmp_path):
    plan = make_plan()
    store = Store(plan, allowed_lateness=3)
    store.push("ev", [ev(u, t, t * 0.5, f"s{t}") for u in (1, 2) for t in range(40)])
    store.push("snap", [{"uid": 1, "at": 2, "c": "x"}])
    before = store.get("svc@v1", [{"uid": 1}, {"uid": 2}, {"uid": 3}], at=40, request={"amount": 1.0}).rows()
    store.save(tmp_path / "state")
    store.save(tmp_path / "state")  # overwriting is atomic too
    loaded = Store.load(tmp_path / "state", plan)
    assert loaded.get("svc@v1", [{"uid": 1}, {"uid": 2}, {"uid": 3}], at=40, request={"amount": 1.0}).rows() == before
    loaded.push("ev", [ev(1, 41, 1.0)])
    assert get(loaded, 1, 42)["n_life"] == 41


def test_load_a_snapshot_without_newer_running_state(tmp_path):
    """A snapshot saved before the store kept some running state (here: evicted extremes, from
    a version whose tables with lifetime min/max never evicted) loads with that state empty."""
    import json

    plan = make_plan()
    store = Store(plan)
    store.push("ev", [ev(u, 0, -1.0) for u in range(1, 40)])  # 39 entities: slot arrays past their first 16
    store.save(tmp_path / "state")
    manifest = json.loads((tmp_path / "state" / "manifest.json").read_text())
    for tb in manifest["tables"]:
        tb["arrays"] = {k: v for k, v in tb["arrays"].items() if not k.startswith("slot:ex")}
    (tmp_path / "state" / "manifest.json").write_text(json.dumps(manifest))
    loaded = Store.load(tmp_path / "state", plan)
    assert get(loaded, 39, 1)["min_life"] == -1.0
    loaded.push("ev", [ev(39, t, 5.0) for t in range(1, 40)])  # evicts the row at 0 into the running state
    assert loaded.tables[0].cutoff is not None
    assert (get(loaded, 39, 40)["min_life"], get(loaded, 39, 40)["max_life"]) == (-1.0, 5.0)


def test_polars_push_and_outputs():
    store = Store(make_plan())
    df = pl.DataFrame({"uid": [1, 1], "ts": [0, 1], "x": [1.5, None], "s": ["a", None]})
    store.push("ev", df.with_columns(pl.col("ts").cast(pl.Datetime("us"))))
    res = store.get("svc@v1", [{"uid": 1}], at=5)
    assert res.to_polars()["sum10"].to_list() == [1.5]
    assert res.columns()["n10"][0] == 2


def test_errors():
    store = Store(make_plan())
    with pytest.raises(UnknownServiceError, match="svc@v1"):
        store.get("nope@v1", [{"uid": 1}], at=1)
    with pytest.raises(SchemaError, match="not a `float64`"):
        store.push("ev", [ev(1, 0, "bad")])
    with pytest.raises(SchemaError, match="no `ts`"):
        store.push("ev", [{"uid": 1, "x": 1.0}])
    with pytest.raises(KeyError, match="sources"):
        store.push("nope", [])


def test_generated_source_is_inspectable():
    src = compile_service(make_plan(), "svc", 1).source_code
    assert "def evaluate(q, req):" in src and "q.view(" in src


def test_string_arrays_round_trip_without_polars(tmp_path):
    import numpy as np

    from astra.online.persist import _load_array, _save_array

    a = np.array(["", "é", "a b", "x" * 300], dtype=np.dtypes.StringDType())
    fname = _save_array(tmp_path, "s", a)
    assert fname.endswith(".json")
    assert _load_array(tmp_path / fname, a.dtype).tolist() == a.tolist()
