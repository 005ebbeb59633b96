"""Fitted transforms against scikit-learn: the statistics a fit learns (astra.ops.transforms) and
the values the bound plan gives in every engine (offline, online single and batch, reference)
agree with StandardScaler, MinMaxScaler, RobustScaler, KBinsDiscretizer, OrdinalEncoder and
SimpleImputer within 1e-12, on random data with nulls, constant columns and hostile values."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from three_engines import compile_features, run_all

from astra.ops.transforms import TRANSFORMS, FitDataError
from astra.plan.fit import bind_features

sklearn = pytest.importorskip("sklearn")
from sklearn.impute import SimpleImputer  # noqa: E402
from sklearn.preprocessing import (  # noqa: E402
    KBinsDiscretizer,
    MinMaxScaler,
    OrdinalEncoder,
    RobustScaler,
    StandardScaler,
)

T0 = 1_700_000_000_000_000
TOL = 1e-12


def close(a: float, b: float) -> bool:
    """Within 1e-12, relative to the magnitude (absolute near 0); NaN matches NaN."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= TOL * max(1.0, abs(a), abs(b))


def datasets():
    """(name, training values with None for null): random, shifted, tiny, constant, ties, ints."""
    rng = np.random.default_rng(15)
    out = []
    for i, n in enumerate((3, 17, 200)):
        v = rng.normal(3.0, 10.0 ** (i - 1), n).tolist()
        for j in range(0, n, 5):
            v[j] = None
        out.append((f"normal{n}", v))
    out.append(("shifted", (rng.normal(0, 1, 60) + 1e9).tolist()))
    out.append(("constant", [0.1] * 40 + [None] * 3))
    out.append(("single", [42.0]))
    out.append(("ties", [float(x) for x in rng.integers(0, 4, 80)]))
    out.append(("wide", (rng.standard_cauchy(100) * 1e6).tolist()))
    return out


DATA = datasets()


def column(values) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64).reshape(-1, 1)


def fit(name: str, values, *params) -> dict:
    return TRANSFORMS[name].fit(pl.Series("x", values, dtype=pl.Float64), "x", params)


def hostile(values) -> list:
    """Query values: the training ones, then null, NaN, ±inf, ±0, huge and tiny numbers."""
    return [*values, None, math.nan, math.inf, -math.inf, 0.0, -0.0, 1e308, -1e308, 5e-324]


def run_bound(features: str, fields: str, stats: dict, queries: list[dict]) -> dict[str, list[dict]]:
    plan = bind_features(compile_features(features, fields), stats)
    return run_all(plan, [{"ts": T0 + i, **q} for i, q in enumerate(queries)])


def assert_engines(results: dict, name: str, expected: list, slack: list | None = None) -> None:
    """Every engine gives `expected`: floats within 1e-12 (times `slack[i]` for query i), others equal."""
    for engine, rows in results.items():
        got = [r[name] for r in rows]
        assert len(got) == len(expected)
        for i, (g, w) in enumerate(zip(got, expected)):
            if g is None or w is None:
                ok = g is None and w is None
            elif isinstance(w, float) and slack is not None and math.isfinite(w) and math.isfinite(g):
                ok = abs(g - w) <= TOL * slack[i]
            else:
                ok = close(g, w) if isinstance(w, float) else (g == w and type(g) is type(w))
            assert ok, f"{engine}: {name}[{i}] = {g!r}, expected {w!r} (query {i})"


@pytest.mark.parametrize(("label", "values"), DATA, ids=[d[0] for d in DATA])
def test_scalers_agree_with_scikit_learn(label: str, values: list) -> None:
    x = column(values)
    queries = hostile(values)
    q = column(queries)
    stats, expected, slack = {}, {}, {}
    with np.errstate(all="ignore"):
        for name, scaler, center, scale in (
            ("standard_scale", StandardScaler(), "mean_", "scale_"),
            ("min_max_scale", MinMaxScaler(), "data_min_", "data_range_"),
            ("robust_scale", RobustScaler(), "center_", "scale_"),
        ):
            s = fit(name, values)
            scaler.fit(x)
            want_scale = getattr(scaler, scale)[0]
            want_scale = 1.0 if name == "min_max_scale" and want_scale == 0 else want_scale
            assert close(s["center"], getattr(scaler, center)[0]), (name, s, getattr(scaler, center))
            assert close(s["scale"], want_scale), (name, s, want_scale)
            stats[f"g@v1.{name}#0"] = s
            out = scaler.transform(np.nan_to_num(q, nan=0.0, posinf=0.0, neginf=0.0))[:, 0]
            # sklearn rejects inf on input: the expectation of the non-finite queries is stated here
            expected[name] = [None if v is None else (math.nan if v != v else (v - s["center"]) / s["scale"])
                              if not math.isfinite(v) else float(o) for v, o in zip(queries, out)]
            # (x - c) / s is exact to 1e-12 of the input's magnitude: on data far from 0 the two
            # libraries' float sums differ in the last bits of the centre, as any two sums may
            slack[name] = [max(1.0, abs(v or 0.0), abs(s["center"])) / s["scale"] for v in queries]
    features = "\n".join(f"    {n}: float64? = {n}(r.x)" for n in expected)
    results = run_bound(features, "x: float64?", stats, [{"x": v} for v in queries])
    for name, want in expected.items():
        assert_engines(results, name, want, slack[name])


def test_a_constant_column_scales_by_one() -> None:
    for name in ("standard_scale", "min_max_scale", "robust_scale"):
        assert fit(name, [0.1] * 10)["scale"] == 1.0
        assert fit(name, [7.0])["scale"] == 1.0


@pytest.mark.parametrize("n_bins", [2, 3, 4, 10])
def test_quantile_bins_agree_with_kbins_and_numpy(n_bins: int) -> None:
    rng = np.random.default_rng(n_bins)
    train = rng.normal(0, 5, 300)
    values = [*train.tolist(), None, None]
    s = fit("quantile_bucketize", values, n_bins)
    kb = KBinsDiscretizer(n_bins=n_bins, encode="ordinal", strategy="quantile", quantile_method="linear")
    kb.fit(train.reshape(-1, 1))
    inner = kb.bin_edges_[0][1:-1]
    assert len(s["edges"]) == len(inner)
    assert all(close(a, b) for a, b in zip(s["edges"], inner))
    assert all(close(a, b) for a, b in zip(s["edges"], np.quantile(train, np.arange(1, n_bins) / n_bins)))
    sample = train[:50]
    # scikit-learn on training values; numpy.digitize on the fitted edges themselves, where a value
    # equal to an edge goes in the bin above it (the two libraries' edges may differ in the last bit)
    queries = [*sample.tolist(), *s["edges"], None, math.nan, math.inf, -math.inf, -1e308, 1e308]
    expected = [*kb.transform(sample.reshape(-1, 1))[:, 0].astype(int).tolist(),
                *np.digitize(s["edges"], s["edges"], right=False).tolist(), None, None, n_bins - 1, 0, 0, n_bins - 1]
    assert expected[50:50 + len(s["edges"])] == list(range(1, n_bins))
    results = run_bound(f"    b: int32? = quantile_bucketize(r.x, {n_bins})", "x: float64?",
                        {"g@v1.b#0": s}, [{"x": v} for v in queries])
    assert_engines(results, "b", expected)


def test_heavy_ties_keep_each_edge_once() -> None:
    s = fit("quantile_bucketize", [1.0] * 50 + [2.0] * 50, 10)
    assert s["edges"] == sorted(set(s["edges"]))
    results = run_bound("    b: int32? = quantile_bucketize(r.x, 10)", "x: float64?", {"g@v1.b#0": s},
                        [{"x": 1.0}, {"x": 2.0}, {"x": 0.0}, {"x": 3.0}])
    want = [int(np.searchsorted(s["edges"], v, side="right")) for v in (1.0, 2.0, 0.0, 3.0)]
    assert_engines(results, "b", want)


def test_ordinal_agrees_with_ordinal_encoder() -> None:
    rng = np.random.default_rng(3)
    words = ["b", "a", "ä", "Z", "", "a b", "日本", "c"]
    train = [words[i] for i in rng.integers(0, 6, 100)]
    s = TRANSFORMS["ordinal"].fit(pl.Series("s", [*train, None], dtype=pl.String), "s", ())
    enc = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1).fit(np.array(train).reshape(-1, 1))
    assert s["categories"] == enc.categories_[0].tolist()
    queries = [*words, None]
    known = enc.transform(np.array(words, dtype=object).reshape(-1, 1))[:, 0].astype(int).tolist()
    results = run_bound("    o: int32? = ordinal(r.s)", "s: string?", {"g@v1.o#0": s},
                        [{"s": v} for v in queries])
    assert_engines(results, "o", [*known, None])
    assert -1 in known  # words the fit never saw


def test_ordinal_of_integers_and_bools() -> None:
    s = TRANSFORMS["ordinal"].fit(pl.Series("n", [5, -3, 5, 10**15, None], dtype=pl.Int64), "n", ())
    assert s["categories"] == [-3, 5, 10**15]
    results = run_bound("    o: int32? = ordinal(r.n)", "n: int64?", {"g@v1.o#0": s},
                        [{"n": v} for v in (10**15, -3, 5, 4, None)])
    assert_engines(results, "o", [2, 0, 1, -1, None])
    b = TRANSFORMS["ordinal"].fit(pl.Series("b", [True, True], dtype=pl.Boolean), "b", ())
    results = run_bound("    o: int32? = ordinal(r.b)", "b: bool?", {"g@v1.o#0": b},
                        [{"b": True}, {"b": False}, {"b": None}])
    assert_engines(results, "o", [0, -1, None])


@pytest.mark.parametrize(("method", "strategy"), [("mean", "mean"), ("median", "median"), ("mode", "most_frequent")])
@pytest.mark.parametrize(("label", "values"), DATA, ids=[d[0] for d in DATA])
def test_impute_agrees_with_simple_imputer(label: str, values: list, method: str, strategy: str) -> None:
    s = fit("impute", values, method)
    want = SimpleImputer(strategy=strategy).fit(column(values)).statistics_[0]
    assert close(s["value"], float(want)), (s, want)
    queries = [values[0], None, math.nan, math.inf, -0.0]
    results = run_bound(f"    i: float64 = impute(r.x, {method})", "x: float64?", {"g@v1.i#0": s},
                        [{"x": v} for v in queries])
    expected = [s["value"] if v is None or v != v else v for v in queries]
    assert_engines(results, "i", expected)


def test_impute_mode_keeps_the_type_and_takes_the_smallest_tie() -> None:
    s = TRANSFORMS["impute"].fit(pl.Series("s", ["b", "a", "b", "a", None, "c"]), "s", ("mode",))
    assert s["value"] == "a"  # as SimpleImputer(strategy="most_frequent")
    results = run_bound("    i: string = impute(r.s, mode)", "s: string?", {"g@v1.i#0": s},
                        [{"s": None}, {"s": "z"}])
    assert_engines(results, "i", ["a", "z"])


def test_impute_with_a_literal_needs_no_fit() -> None:
    plan = compile_features("    i: float64 = impute(r.x, -1)\n    j: int64 = impute(r.n, 7)", "x: float64?  n: int64?")
    results = run_all(plan, [{"ts": T0, "x": None, "n": None}, {"ts": T0 + 1, "x": math.nan, "n": 3},
                             {"ts": T0 + 2, "x": 2.5, "n": None}])
    assert_engines(results, "i", [-1.0, -1.0, 2.5])
    assert_engines(results, "j", [7, 3, 7])


@pytest.mark.parametrize("name", ["standard_scale", "min_max_scale", "robust_scale", "quantile_bucketize"])
def test_nothing_to_learn_from_is_a_fit_error(name: str) -> None:
    params = (4,) if name == "quantile_bucketize" else ()
    with pytest.raises(FitDataError, match="no non-null values"):
        fit(name, [None, math.nan], *params)
    with pytest.raises(FitDataError, match="infinite"):
        fit(name, [1.0, math.inf], *params)


def test_an_unbound_plan_is_refused_by_every_engine() -> None:
    from astra.offline.errors import BackfillError
    from astra.online import OnlineError, Store
    from astra.plan import reference
    from astra.plan.fit import FitError

    plan = compile_features("    z: float64? = standard_scale(r.x)", "x: float64?")
    with pytest.raises(FitError, match="applies fitted transforms"):
        reference.evaluate(plan, "svc", 1, [{"uid": 1, "ts": T0, "x": 1.0}], {"ev": []})
    with pytest.raises(OnlineError, match="astra fit"):
        Store(plan).get("svc@v1", [{"uid": 1}], at=T0, request=[{"x": 1.0}])
    with pytest.raises(OnlineError, match="astra fit"):
        Store(plan, services=["svc@v1"])
    with pytest.raises(BackfillError, match="astra fit"):
        from astra.offline import backfill

        backfill(plan, "svc", 1, pl.DataFrame({"uid": [1], "ts": [T0], "x": [1.0]}), None)
