"""Hand-checked edge cases of the offline engine; every expected value is derived by hand
(see the comments), not by running the code."""

from __future__ import annotations

import math

import polars as pl
import pytest

from astra.lang.types import BOOL, FLOAT64, INT32, INT64, STRING, TIMESTAMP, Type
from astra.offline import BackfillError, backfill
from astra.plan import ir, reference

F = FLOAT64.nullable()
KEY = ir.SourceKey(source="ev", columns=("uid",))
SNAP = ir.SourceKey(source="snap", columns=("uid",))

# Events in file order (times in µs).  uid 1: ts 5, 10, 10 (tie), 15, 20; uid 2: one event whose
# amount is null; a null key and a null time that must never be visible.
EVENTS = [
    dict(uid=1, ts=10, amount=1.0, n=1, cat="a"),
    dict(uid=1, ts=10, amount=2.0, n=2, cat="b"),
    dict(uid=1, ts=15, amount=None, n=None, cat=None),
    dict(uid=1, ts=20, amount=4.0, n=3, cat="c"),
    dict(uid=2, ts=5, amount=None, n=5, cat="z"),
    dict(uid=None, ts=12, amount=100.0, n=9, cat="x"),
    dict(uid=1, ts=None, amount=100.0, n=9, cat="x"),
    dict(uid=1, ts=5, amount=8.0, n=1, cat="d"),
]
SNAPSHOTS = [
    dict(uid=1, at=10, tier=1),
    dict(uid=1, at=10, tier=2),
    dict(uid=1, at=18, tier=None),
    dict(uid=2, at=30, tier=9),
]
# q0..q5: (uid, t, bonus)
SPINE = [(1, 20, 1.5), (1, 15, None), (2, 20, 0.0), (3, 20, 2.0), (1, 5, 1.0), (1, 11, 1.0)]


def agg(op, column=None, window=None, where=None, param=None, t=INT64):
    return ir.Aggregate(op=op, key=KEY, column=column, where=where, window=window, param=param, type=t)


def ref(name, t):
    return ir.FeatureRef(feature=f"g@v1.{name}", type=t)


FEATURES = {
    "cnt_all": (agg("count"), INT64, None),
    "cnt_10": (agg("count", window=10), INT64, None),
    "cnt_amount": (agg("count", "amount"), INT64, None),
    "sum_10": (agg("sum", "amount", 10, t=FLOAT64), FLOAT64, None),
    "mean_life": (agg("mean", "amount", t=F), F, None),
    "max_10": (agg("max", "amount", 10, t=F), F, None),
    "min_n": (agg("min", "n", t=INT64.nullable()), INT64.nullable(), None),
    "last_cat": (agg("last", "cat", t=STRING.nullable()), STRING.nullable(), None),
    "first_cat_10": (agg("first", "cat", 10, t=STRING.nullable()), STRING.nullable(), None),
    "distinct_n": (agg("count_distinct", "n"), INT64, None),
    "distinct_n_10": (agg("count_distinct", "n", 10), INT64, None),
    "var_life": (agg("variance", "amount", t=F), F, None),
    "std_life": (agg("stddev", "amount", t=F), F, None),
    "last2_n": (agg("last_k", "n", param=2, t=Type.list_of(INT64)), Type.list_of(INT64), None),
    "none_big": (agg("count", where=ir.Apply(op=">", args=(ir.Column(name="amount", type=F),
                                                         ir.Const(value=100.0, type=FLOAT64)),
                                             type=BOOL.nullable())), INT64, None),
    "sum_cat_a": (agg("sum", "amount", where=ir.Apply(op="==", args=(ir.Column(name="cat", type=STRING.nullable()),
                                                                      ir.Const(value="a", type=STRING)),
                                                      type=BOOL.nullable()), t=FLOAT64), FLOAT64, None),
    "tier": (ir.AsOf(key=SNAP, column="tier", type=INT32.nullable()), INT32.nullable(), None),
    "ratio": (ir.Apply(op="/", args=(ref("sum_10", FLOAT64), ref("cnt_amount", INT64)), type=F), F, None),
    "ratio_d": (ir.Apply(op="/", args=(ref("sum_10", FLOAT64), ref("cnt_amount", INT64)), type=F), FLOAT64, -1.0),
    "bonus2": (ir.Apply(op="*", args=(ir.RequestInput(request="r", field="bonus", type=F),
                                     ir.Const(value=2, type=INT64)), type=F), F, None),
    "now": (ir.Now(type=TIMESTAMP), TIMESTAMP, None),
}

EXPECTED = {  # q0 (1, 20), q1 (1, 15), q2 (2, 20), q3 (3, 20), q4 (1, 5), q5 (1, 11)
    # uid 1 before 20: ts 5, 10, 10, 15 (the event at exactly 20 is invisible)
    "cnt_all": [4, 3, 1, 0, 0, 3],
    # [t - 10, t): q0 [10, 20) -> 10, 10, 15; q1 [5, 15) -> 5 (edge included), 10, 10
    "cnt_10": [3, 3, 0, 0, 0, 3],
    "cnt_amount": [3, 3, 0, 0, 0, 3],
    "sum_10": [3.0, 11.0, 0.0, 0.0, 0.0, 11.0],
    "mean_life": [11 / 3, 11 / 3, None, None, None, 11 / 3],
    "max_10": [2.0, 8.0, None, None, None, 8.0],
    "min_n": [1, 1, 5, None, None, 1],
    # ts order 5 (d), 10 (a), 10 (b), 15 (null): the later of the tied rows wins
    "last_cat": ["b", "b", "z", None, None, "b"],
    "first_cat_10": ["a", "d", None, None, None, "d"],
    "distinct_n": [2, 2, 1, 0, 0, 2],
    # q0 [10, 20): n = 1, 2, null; q1 [5, 15): 1, 1, 2; q2: uid 2's n = 5 at ts 5 is outside [10, 20)
    "distinct_n_10": [2, 2, 0, 0, 0, 2],
    # amounts 8, 1, 2: (69 - 121 / 3) / 2 = 43 / 3
    "var_life": [43 / 3, 43 / 3, None, None, None, 43 / 3],
    "std_life": [math.sqrt(43 / 3), math.sqrt(43 / 3), None, None, None, math.sqrt(43 / 3)],
    "last2_n": [[2, 1], [2, 1], [5], [], [], [2, 1]],
    "none_big": [0, 0, 0, 0, 0, 0],
    "sum_cat_a": [1.0, 1.0, 0.0, 0.0, 0.0, 1.0],
    # snapshots of uid 1: at 10 (1), at 10 (2, later row wins), at 18 (null, returned as is)
    "tier": [None, 2, None, None, None, 2],
    "ratio": [1.0, 11 / 3, None, None, None, 11 / 3],
    "ratio_d": [1.0, 11 / 3, -1.0, -1.0, -1.0, 11 / 3],
    "bonus2": [3.0, None, 0.0, 4.0, 2.0, 2.0],
}


def make_plan(features=FEATURES, entity_keys=(("uid", INT64),), key_columns=("uid",)) -> ir.Plan:
    ev = ir.Source(name="ev", kind="events", path="ev.parquet", time="ts",
                   columns=(("uid", INT64.nullable()), ("ts", TIMESTAMP.nullable()), ("amount", F),
                            ("n", INT64.nullable()), ("cat", STRING.nullable())),
                   keys=(ir.SourceKey(source="ev", columns=key_columns),), entities=("user",))
    snap = ir.Source(name="snap", kind="snapshot", path="snap.parquet", time="at",
                     columns=(("uid", INT64.nullable()), ("at", TIMESTAMP), ("tier", INT32.nullable())),
                     keys=(SNAP,), entities=("user",))
    feats = tuple(ir.Feature(id=f"g@v1.{n}", group="g", version=1, name=n, entity="user", expr=e, type=t,
                             default=d) for n, (e, t, d) in features.items())
    svc = ir.Service(name="svc", version=1, outputs=tuple(ir.Output(name=n, feature=f"g@v1.{n}") for n in features),
                     requests=("r",), entities=("user",))
    return ir.Plan(entities=(ir.Entity(name="user", keys=entity_keys),), sources=(ev, snap),
                   requests=(ir.Request(name="r", fields=(("bonus", F),)),), features=feats,
                   groups=(ir.Group(name="g", version=1, entity="user", features=tuple(f.id for f in feats)),),
                   services=(svc,))


def _write(tmp_path, events=EVENTS, snaps=SNAPSHOTS, row_group_size=None):
    pl.DataFrame(events, schema={"uid": pl.Int64, "ts": pl.Int64, "amount": pl.Float64, "n": pl.Int64,
                                 "cat": pl.String}, orient="row") \
        .with_columns(pl.col("ts").cast(pl.Datetime("us"))) \
        .write_parquet(tmp_path / "ev.parquet", row_group_size=row_group_size)
    pl.DataFrame(snaps, schema={"uid": pl.Int64, "at": pl.Int64, "tier": pl.Int32}, orient="row") \
        .with_columns(pl.col("at").cast(pl.Datetime("us"))).write_parquet(tmp_path / "snap.parquet")


def _spine(unit="us"):
    return pl.DataFrame({"uid": [s[0] for s in SPINE], "ts": [s[1] for s in SPINE],
                         "bonus": [s[2] for s in SPINE]}).with_columns(pl.col("ts").cast(pl.Datetime("us"))
                                                                       .dt.cast_time_unit(unit))


def _close(a, b):
    if isinstance(a, float) and b is not None:
        return math.isclose(a, b, rel_tol=1e-12)
    return a == b


@pytest.mark.parametrize("unit", ["us", "ns"])
def test_hand_checked_values(tmp_path, unit):
    _write(tmp_path)
    spine = _spine(unit)
    out = backfill(make_plan(), "svc", 1, spine, tmp_path)
    assert out.columns[:3] == ["uid", "ts", "bonus"]
    assert out["ts"].dtype == spine["ts"].dtype  # spine columns unchanged
    assert out["tier"].dtype == pl.Int32 and out["last2_n"].dtype == pl.List(pl.Int64)
    for name, want in EXPECTED.items():
        got = out[name].to_list()
        assert all(_close(g, w) for g, w in zip(got, want)), f"{name}: {got} != {want}"
    assert out["now"].dt.epoch("us").to_list() == [s[1] for s in SPINE]


def test_hand_checked_values_from_many_row_groups(tmp_path):
    """Sources read in several chunks (a Parquet file's row groups: here of 3 rows) come to
    NumPy piece by piece (times, integer keys, numbers); the answers are the hand-checked ones."""
    from astra import io

    _write(tmp_path, row_group_size=3)
    plan = make_plan()
    frame = io.load_source(plan.source("ev"), tmp_path, {"amount", "n", "cat"}, {"uid"})
    assert all(frame[c].n_chunks() > 1 for c in ("uid", "amount", "n", io.TIME))
    out = backfill(plan, "svc", 1, _spine("us"), tmp_path)
    for name, want in EXPECTED.items():
        got = out[name].to_list()
        assert all(_close(g, w) for g, w in zip(got, want)), f"{name}: {got} != {want}"


@pytest.mark.parametrize(("radix_bits", "bits"), [(16, 63), (0, 63), (0, 7), (0, 5)])
def test_distinct_counts_by_every_sort_strategy(tmp_path, monkeypatch, radix_bits, bits):
    """count_distinct groups narrow value codes by a radix sort (16 bits); wider ones it packs
    into one sort key with the entity and position when that fits (63 bits); with the key
    space narrowed, (value, position) (7 bits here) or a stable arg-sort (5) must agree."""
    import astra.offline.kernels as kernels

    monkeypatch.setattr(kernels, "_RADIX_BITS", radix_bits)
    monkeypatch.setattr(kernels, "_BITS", bits)
    _write(tmp_path)
    out = backfill(make_plan(), "svc", 1, _spine("us"), tmp_path)
    for name in ("distinct_n", "distinct_n_10"):
        assert out[name].to_list() == EXPECTED[name], name


@pytest.mark.parametrize("scale", [1, -1, 1 << 20])
def test_distinct_counts_of_a_column_read_for_nothing_else(tmp_path, scale):
    """A column only `count_distinct` reads over every row is read as 16-bit codes when its
    values span fewer than 2**16 (here 1..9, or -9..-1); spread over 2**20 it is not, and the
    values are read instead.  Either way the counts are the hand-checked ones."""
    only = {k: FEATURES[k] for k in ("distinct_n", "distinct_n_10")}
    scaled = [{**e, "n": None if e["n"] is None else e["n"] * scale} for e in EVENTS]
    _write(tmp_path, events=scaled)
    out = backfill(make_plan(only), "svc", 1, _spine("us"), tmp_path)
    for name in only:
        assert out[name].to_list() == EXPECTED[name], name


@pytest.mark.parametrize("also_min", [False, True])
def test_distinct_counts_at_the_bottom_of_int64(tmp_path, also_min):
    """Values shifted down so that the smallest is int64's minimum, as codes (count_distinct
    alone) or as values (min reads them too): the counts are the hand-checked ones.  The null
    becomes 1 (its row's other values already include a 1, so no count changes), which keeps
    the values' range narrow."""
    names = ("distinct_n", "distinct_n_10") + (("min_n",) if also_min else ())
    shifted = [{**e, "n": (1 if e["n"] is None else e["n"]) - 1 - 2**63} for e in EVENTS]
    _write(tmp_path, events=shifted)
    out = backfill(make_plan({k: FEATURES[k] for k in names}), "svc", 1, _spine("us"), tmp_path)
    for name in ("distinct_n", "distinct_n_10"):
        assert out[name].to_list() == EXPECTED[name], name


@pytest.mark.parametrize(("bits", "scale", "mode"), [(6, 1, "times"), (20, 1 << 50, "packed")])
def test_keys_too_wide_to_pack_are_ranked(tmp_path, monkeypatch, bits, scale, mode):
    """The key space is narrowed to `bits`.  With 6, (entity, time) no longer fits: times are
    replaced by their rank and chunk sorts fall back to an arg-sort.  With the ids spread over
    2**50, the entity ids are dense ranks of the keys rather than offsets, and then fit.  The
    answers stay the same."""
    import astra.offline.keys as keys

    monkeypatch.setattr(keys, "_BITS", bits)
    seen = []
    init = keys.KeySpace.__init__

    def spy(self, *args, **kwargs):
        init(self, *args, **kwargs)
        seen.append("ids" if self.id_uniq is not None else "times" if self.t_uniq is not None else "packed")

    monkeypatch.setattr(keys.KeySpace, "__init__", spy)
    def spread(row):  # null keys stay null
        return {**row, "uid": None if row["uid"] is None else row["uid"] * scale}

    _write(tmp_path, events=[spread(e) for e in EVENTS], snaps=[spread(s) for s in SNAPSHOTS])
    spine = _spine("us").with_columns(pl.col("uid") * scale)
    out = backfill(make_plan(), "svc", 1, spine, tmp_path)
    assert seen and set(seen) == {mode}
    for name, want in EXPECTED.items():
        got = out[name].to_list()
        assert all(_close(g, w) for g, w in zip(got, want)), f"{name}: {got} != {want}"


@pytest.mark.parametrize("nan", [False, True])
def test_a_nan_amount_is_a_value_and_a_null_is_not(tmp_path, nan):
    """Floats read over every row carry their nulls as NaN when no value is NaN; a column that
    holds a NaN value must keep telling the two apart.  uid 1's amounts by time: 1.0 (ts 1),
    NaN or 2.0 (ts 2), null (ts 3), 4.0 (ts 4).  Queries at 3, 4 and 5 see two, still two (the
    null is no value) and three values; the latest value before 4 is the one at ts 2."""
    second = math.nan if nan else 2.0
    events = [dict(uid=1, ts=1, amount=1.0), dict(uid=1, ts=2, amount=second), dict(uid=1, ts=3, amount=None),
              dict(uid=1, ts=4, amount=4.0)]
    _write(tmp_path, events=events)
    feats = {"n": (agg("count", "amount"), INT64, None),
             "s": (agg("sum", "amount", t=FLOAT64), FLOAT64, None),
             "last": (agg("last", "amount", t=F), F, None)}
    spine = pl.DataFrame({"uid": [1, 1, 1], "ts": [3, 4, 5]}).with_columns(pl.col("ts").cast(pl.Datetime("us")))
    out = backfill(make_plan(feats), "svc", 1, spine, tmp_path)
    assert out["n"].to_list() == [2, 2, 3]
    if nan:  # the NaN is summed and is the latest value before 4
        assert [math.isnan(x) for x in out["s"].to_list()] == [True, True, True]
        assert math.isnan(out["last"][1]) and out["last"][2] == 4.0
    else:
        assert out["s"].to_list() == [3.0, 3.0, 7.0]
        assert out["last"].to_list() == [2.0, 2.0, 4.0]


def test_reference_agrees_on_the_same_cases():
    rows = [dict(uid=u, ts=t, bonus=b) for u, t, b in SPINE]
    out = reference.evaluate(make_plan(), "svc", 1, rows, {"ev": EVENTS, "snap": SNAPSHOTS})
    for name, want in EXPECTED.items():
        got = [r[name] for r in out]
        got = [list(g) if isinstance(g, tuple) else g for g in got]
        assert all(_close(g, w) for g, w in zip(got, want)), f"{name}: {got} != {want}"


def test_int_microsecond_spine_and_empty_source(tmp_path):
    _write(tmp_path, events=[], snaps=[])
    spine = pl.DataFrame({"uid": [1, 2], "ts": [20, 5], "bonus": [None, 1.0]})
    out = backfill(make_plan(), "svc", 1, spine, tmp_path)
    assert out["cnt_all"].to_list() == [0, 0]
    assert out["sum_10"].to_list() == [0.0, 0.0]
    assert out["mean_life"].to_list() == [None, None]
    assert out["last2_n"].to_list() == [[], []]
    assert out["ratio_d"].to_list() == [-1.0, -1.0]


def test_composite_keys(tmp_path):
    rows = [dict(uid=1, region="a", ts=1), dict(uid=1, region="b", ts=2), dict(uid=1, region="a", ts=3),
            dict(uid=1, region=None, ts=1)]
    pl.DataFrame(rows).with_columns(pl.col("ts").cast(pl.Datetime("us"))).write_parquet(tmp_path / "ev.parquet")
    _write_snap_only(tmp_path)
    plan = make_plan({"cnt": (ir.Aggregate(op="count", key=ir.SourceKey(source="ev", columns=("uid", "region")),
                                           column=None, where=None, window=None, param=None, type=INT64), INT64, None)},
                     entity_keys=(("uid", INT64), ("region", STRING)), key_columns=("uid", "region"))
    plan = _with_columns(plan, (("uid", INT64), ("region", STRING.nullable()), ("ts", TIMESTAMP)))
    spine = pl.DataFrame({"uid": [1, 1, 2, 1], "region": ["a", "b", "a", "a"], "ts": [10, 10, 10, 3]})
    out = backfill(plan, "svc", 1, spine, tmp_path)
    # (1, a): ts 1 and 3; (1, b): ts 2; (2, a): none; (1, a) before 3: ts 1 only
    assert out["cnt"].to_list() == [2, 1, 0, 1]


def _write_snap_only(tmp_path):
    pl.DataFrame({"uid": [1], "at": [1], "tier": [1]}, schema={"uid": pl.Int64, "at": pl.Int64, "tier": pl.Int32}) \
        .with_columns(pl.col("at").cast(pl.Datetime("us"))).write_parquet(tmp_path / "snap.parquet")


def _with_columns(plan, columns):
    import attrs

    ev = attrs.evolve(plan.source("ev"), columns=columns)
    return attrs.evolve(plan, sources=(ev, plan.source("snap")))


# --------------------------------------------------------------------------- errors


def _error(tmp_path, spine, service="svc", version=1, write=True) -> str:
    if write:
        _write(tmp_path)
    with pytest.raises(BackfillError) as exc:
        backfill(make_plan(), service, version, spine, tmp_path)
    return exc.value.message


def test_error_missing_key_column(tmp_path):
    msg = _error(tmp_path, pl.DataFrame({"user": [1], "ts": [1]}))
    assert "uid" in msg and "user" in msg


def test_error_missing_time_column(tmp_path):
    msg = _error(tmp_path, pl.DataFrame({"uid": [1], "when": [1]}))
    assert "`ts`" in msg and "when" in msg


def test_error_wrong_key_dtype(tmp_path):
    msg = _error(tmp_path, pl.DataFrame({"uid": ["1"], "ts": [1], "bonus": [1.0]}))
    assert "`uid`" in msg and "int64" in msg and "String" in msg


def test_error_null_keys_and_times(tmp_path):
    msg = _error(tmp_path, pl.DataFrame({"uid": [1, None, None], "ts": [1, 2, 3], "bonus": [1.0] * 3}))
    assert "2 null" in msg and "1, 2" in msg
    msg = _error(tmp_path, pl.DataFrame({"uid": [1, 1], "ts": [None, 2], "bonus": [1.0] * 2}))
    assert "1 null" in msg and "row(s) 0" in msg


def test_error_missing_request_column(tmp_path):
    msg = _error(tmp_path, pl.DataFrame({"uid": [1], "ts": [1]}))
    assert "bonus" in msg


def test_error_unknown_service(tmp_path):
    msg = _error(tmp_path, _spine(), service="nope")
    assert "nope" in msg and "svc@v1" in msg
    assert "svc@v2" in _error(tmp_path, _spine(), version=2)


def test_error_missing_source_file(tmp_path):
    msg = _error(tmp_path, _spine(), write=False)
    assert "ev.parquet" in msg and "`ev`" in msg


def test_error_source_schema(tmp_path):
    pl.DataFrame({"uid": [1], "ts": [1]}).with_columns(pl.col("ts").cast(pl.Datetime("us"))) \
        .write_parquet(tmp_path / "ev.parquet")
    _write_snap_only(tmp_path)
    with pytest.raises(BackfillError, match="missing column"):
        backfill(make_plan(), "svc", 1, _spine(), tmp_path)
    pl.DataFrame({"uid": [1], "ts": [1], "amount": ["x"], "n": [1], "cat": ["a"]}) \
        .with_columns(pl.col("ts").cast(pl.Datetime("us"))).write_parquet(tmp_path / "ev.parquet")
    with pytest.raises(BackfillError, match="`amount` should be float64"):
        backfill(make_plan(), "svc", 1, _spine(), tmp_path)


@pytest.mark.parametrize(("key_shift", "time_scale"), [(0, 1 << 38), (1 << 62, 1), (1 << 62, 1 << 38)])
def test_wide_keys_and_times_use_the_compressed_key_space(tmp_path, key_shift, time_scale):
    """Ids or times too wide to pack side by side in 63 bits: same answers as the reference."""
    import attrs

    def scale(rows, time_col):
        return [{**r, "uid": None if r["uid"] is None else r["uid"] + key_shift - (1 if r["uid"] == 2 else 0)
                 * key_shift, time_col: None if r[time_col] is None else r[time_col] * time_scale} for r in rows]

    events, snaps = scale(EVENTS, "ts"), scale(SNAPSHOTS, "at")
    plan = make_plan()
    feats = []
    for f in plan.features:
        expr = f.expr
        if isinstance(expr, ir.Aggregate) and expr.window is not None:
            expr = attrs.evolve(expr, window=expr.window * time_scale)
        feats.append(attrs.evolve(f, expr=expr))
    plan = attrs.evolve(plan, features=tuple(feats))
    spine_rows = scale([dict(uid=u, ts=t, bonus=b) for u, t, b in SPINE], "ts")
    _write(tmp_path, events, snaps)
    spine = pl.DataFrame(spine_rows).with_columns(pl.col("ts").cast(pl.Datetime("us")))
    out = backfill(plan, "svc", 1, spine, tmp_path)
    want = reference.evaluate(plan, "svc", 1, spine_rows, {"ev": events, "snap": snaps})
    for name in EXPECTED:
        got = [tuple(g) if isinstance(g, list) else g for g in out[name].to_list()]
        assert all(_close(g, w[name]) for g, w in zip(got, want)), f"{name}: {got} != {[w[name] for w in want]}"


def test_snapshot_every_entity_on_a_schedule(tmp_path):
    from astra.offline import snapshot

    _write(tmp_path)
    feats = {k: FEATURES[k] for k in ("cnt_all", "last_cat", "tier")}
    out = snapshot(make_plan(feats), "svc", 1, tmp_path, every=10, start=10, end=20)
    assert out.columns == ["uid", "ts", "cnt_all", "last_cat", "tier"]
    # keys seen in the sources: 1 and 2 (null keys are not entities); times 10 and 20
    assert out["uid"].to_list() == [1, 2, 1, 2]
    assert out["ts"].dt.epoch("us").to_list() == [10, 10, 20, 20]
    # uid 1 before 10: ts 5 (d); before 20: 5, 10, 10, 15 -> last non-null "b"; uid 2: ts 5 (z)
    assert out["cnt_all"].to_list() == [1, 1, 4, 1]
    assert out["last_cat"].to_list() == ["d", "z", "b", "z"]
    # tier: nothing before 10 for uid 1; before 20 the row at 18 (null); uid 2's row is at 30
    assert out["tier"].to_list() == [None, None, None, None]


def test_source_keyed_by_two_entities_and_an_empty_spine(tmp_path):
    """A null merchant key hides a row from merchant features only, never from user features."""
    import attrs

    user_key, merchant_key = ir.SourceKey(source="ev", columns=("uid",)), ir.SourceKey(source="ev", columns=("mid",))
    rows = [dict(uid=1, mid=7, ts=1), dict(uid=1, mid=None, ts=2), dict(uid=2, mid=7, ts=3)]
    pl.DataFrame(rows, schema={"uid": pl.Int64, "mid": pl.Int64, "ts": pl.Int64}) \
        .with_columns(pl.col("ts").cast(pl.Datetime("us"))).write_parquet(tmp_path / "ev.parquet")
    _write_snap_only(tmp_path)
    feats = {"u_cnt": (ir.Aggregate(op="count", key=user_key, column=None, where=None, window=None, param=None,
                                    type=INT64), INT64, None)}
    plan = make_plan(feats)
    ev = attrs.evolve(plan.source("ev"), columns=(("uid", INT64.nullable()), ("mid", INT64.nullable()),
                                                  ("ts", TIMESTAMP)),
                      keys=(user_key, merchant_key), entities=("user", "merchant"))
    m_feat = ir.Feature(id="g@v1.m_cnt", group="g", version=1, name="m_cnt", entity="merchant", type=INT64,
                        expr=ir.Aggregate(op="count", key=merchant_key, column=None, where=None, window=None,
                                          param=None, type=INT64))
    outputs = (*plan.services[0].outputs, ir.Output(name="m_cnt", feature=m_feat.id))
    svc = attrs.evolve(plan.services[0], outputs=outputs, entities=("user", "merchant"))
    plan = attrs.evolve(plan, sources=(ev, plan.source("snap")), features=(*plan.features, m_feat), services=(svc,),
                        entities=(*plan.entities, ir.Entity(name="merchant", keys=(("mid", INT64),))))
    spine = pl.DataFrame({"uid": [1, 2], "mid": [7, 7], "ts": [10, 10]})
    out = backfill(plan, "svc", 1, spine, tmp_path)
    assert out["u_cnt"].to_list() == [2, 1]  # uid 1: ts 1 and 2 (its merchant is null)
    assert out["m_cnt"].to_list() == [2, 2]  # merchant 7: uid 1 at ts 1, uid 2 at ts 3
    empty = backfill(plan, "svc", 1, spine.clear(), tmp_path)
    assert empty.height == 0 and empty.columns == [*spine.columns, "u_cnt", "m_cnt"]


def test_a_rows_features_do_not_depend_on_the_rest_of_the_spine(tmp_path):
    """Float sums come from prefix sums over a chunk of entities, so their last bits depend on
    which entities share the chunk.  Chunks are cut by the source's rows only: adding queries
    for other entities to the spine must leave every value of a row bit for bit unchanged,
    even beside an entity whose values are 15 orders of magnitude larger."""
    import numpy as np

    from astra.offline import ExecutionConfig

    small = ExecutionConfig(chunk_rows=200)
    features = {"s": (agg("sum", "amount", t=FLOAT64), FLOAT64, None),
                "v": (agg("variance", "amount", t=F), F, None)}
    rng = np.random.default_rng(1)
    uid = np.repeat(np.arange(1, 41), 10)
    amount = np.where(uid % 2 == 1, rng.normal(0, 1e12, uid.size), rng.random(uid.size) * 1e-3)
    events = [dict(uid=int(u), ts=int(t), amount=float(a), n=0, cat="a")
              for u, t, a in zip(uid, np.tile(np.arange(1, 11), 40), amount)]
    _write(tmp_path, events=events)

    def spine(uids, times):
        return pl.DataFrame({"uid": uids, "ts": times, "bonus": [None] * len(uids)},
                            schema={"uid": pl.Int64, "ts": pl.Int64, "bonus": pl.Float64}) \
            .with_columns(pl.col("ts").cast(pl.Datetime("us")))

    alone = backfill(make_plan(features), "svc", 1, spine([28], [100]), tmp_path, execution=small)
    crowded = backfill(make_plan(features), "svc", 1, spine([28, *[27] * 300], [100, *range(300)]), tmp_path,
                       execution=small)
    assert alone.row(0) == crowded.row(0)
