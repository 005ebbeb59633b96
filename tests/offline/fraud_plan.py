"""A hand-built IR plan of the 22-feature `fraud_model@v1` benchmark service
(../shared/bench/reference_duckdb.py).  The compiled `features/` project will replace it."""

from __future__ import annotations

from astra.lang.types import FLOAT64, INT32, INT64, STRING, TIMESTAMP, Type
from astra.plan import ir

US = 1_000_000
WINDOWS = {"1h": 3600 * US, "1d": 86400 * US, "7d": 7 * 86400 * US, "30d": 30 * 86400 * US}
OPT_F64 = FLOAT64.nullable()


def fraud_model_plan() -> ir.Plan:
    user = ir.Entity(name="user", keys=(("user_id", INT64),))
    tx_key = ir.SourceKey(source="transactions", columns=("user_id",))
    prof_key = ir.SourceKey(source="profiles", columns=("user_id",))
    transactions = ir.Source(
        name="transactions", kind="events", path="transactions.parquet", time="ts",
        columns=(("user_id", INT64), ("merchant_id", INT64), ("amount", OPT_F64),
                 ("category", STRING.nullable()), ("ts", TIMESTAMP)),
        keys=(tx_key,), entities=("user",))
    profiles = ir.Source(
        name="profiles", kind="snapshot", path="profiles.parquet", time="updated_at",
        columns=(("user_id", INT64), ("country", STRING.nullable()), ("tier", INT32.nullable()),
                 ("credit_limit", OPT_F64), ("updated_at", TIMESTAMP)),
        keys=(prof_key,), entities=("user",))

    group, version = "fraud", 1
    exprs: dict[str, tuple[ir.Expr, Type]] = {}
    for w, span in WINDOWS.items():
        def agg(op, column, t, span=span):
            return ir.Aggregate(op=op, key=tx_key, column=column, where=None, window=span, param=None, type=t)
        exprs[f"tx_count_{w}"] = (agg("count", None, INT64), INT64)
        exprs[f"tx_sum_{w}"] = (agg("sum", "amount", FLOAT64), FLOAT64)
        exprs[f"tx_mean_{w}"] = (agg("mean", "amount", OPT_F64), OPT_F64)
        exprs[f"tx_max_{w}"] = (agg("max", "amount", OPT_F64), OPT_F64)
    exprs["merchants_30d"] = (ir.Aggregate(op="count_distinct", key=tx_key, column="merchant_id", where=None,
                                           window=WINDOWS["30d"], param=None, type=INT64), INT64)
    exprs["last_category"] = (ir.Aggregate(op="last", key=tx_key, column="category", where=None, window=None,
                                           param=None, type=STRING.nullable()), STRING.nullable())
    for col, t in (("country", STRING.nullable()), ("tier", INT32.nullable()), ("credit_limit", OPT_F64)):
        exprs[col] = (ir.AsOf(key=prof_key, column=col, type=t), t)

    def ref(name):
        return ir.FeatureRef(feature=f"{group}@v{version}.{name}", type=FLOAT64)

    exprs["spend_ratio_1d_30d"] = (ir.Apply(op="/", args=(ref("tx_sum_1d"), ref("tx_sum_30d")), type=OPT_F64),
                                   OPT_F64)
    features = tuple(
        ir.Feature(id=f"{group}@v{version}.{name}", group=group, version=version, name=name, entity="user",
                   expr=e, type=t)
        for name, (e, t) in exprs.items())
    grp = ir.Group(name=group, version=version, entity="user", features=tuple(f.id for f in features))
    service = ir.Service(name="fraud_model", version=1,
                         outputs=tuple(ir.Output(name=f.name, feature=f.id) for f in features),
                         requests=(), entities=("user",))
    return ir.Plan(entities=(user,), sources=(transactions, profiles), requests=(), features=features,
                   groups=(grp,), services=(service,))
