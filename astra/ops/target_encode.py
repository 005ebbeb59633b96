"""Target encoding with cross-fitting: `target_encode(x, LABEL[, smoothing])`.

The fit learns, per category of `x`, the smoothed mean of the spine's numeric LABEL column,
`(sum_c + m * prior) / (n_c + m)` with `prior` the label's mean over the training rows and `m`
the smoothing (scikit-learn's `TargetEncoder(smooth=m)`).  A category the fit never saw, and a
null `x`, get `prior`.  Serving applies these full-fit statistics (`fitted.target`, then
`fitted.impute` with the prior for null).

Encoding the training rows with statistics that include their own label leaks it into the
feature, so the fit also stores the statistics of K folds: a row's fold is a stable hash of its
entity key (`fold_of`), and fold k's statistics are fitted on the rows of the other folds.  A
backfill of the fit's own training rows applies those (`fitted.target_oof`, offline only):
`astra.plan.fit.cross_fit` decides, by the spine digest recorded in the fit.
"""

from __future__ import annotations

import functools
import hashlib
import json

from astra.lang.types import FLOAT64
from astra.ops.registry import LazyModule, ScalarOp, register
from astra.ops.transforms import TRANSFORMS, FitDataError, Transform, _key

np = LazyModule("numpy", "np", globals())

FOLDS = 5  # K, fixed: the rows of one entity always share a fold
SMOOTHING = 10.0  # m when the call gives none
FNV_OFFSET, FNV_PRIME, MASK = 0xCBF29CE484222325, 0x100000001B3, (1 << 64) - 1


def pl():
    import polars

    return polars


def fold_of(key, folds: int = FOLDS) -> int:
    """The fold of an entity key: FNV-1a (64 bit) of its text (an integer in decimal, a string's
    UTF-8 bytes), modulo the fold count.  Stable across runs, processes and row order."""
    h = FNV_OFFSET
    for b in str(int(key) if isinstance(key, bool) else key).encode():
        h = ((h ^ b) * FNV_PRIME) & MASK
    return h % folds


# --------------------------------------------------------------------------- engine operators
#
# Both operators take the statistics as one literal, their canonical JSON text (`bound_literal`):
# {"categories", "encodings", "prior"} and, for out-of-fold encoding, {"fold_encodings" (K rows of
# one value per category, flattened), "fold_priors", "spine", "start", "end"}.


def bound_literal(stats: dict) -> str:
    keys = ("categories", "encodings", "prior", "fold_encodings", "fold_priors", "spine", "start", "end")
    return json.dumps({k: stats[k] for k in keys}, sort_keys=True, separators=(",", ":"), allow_nan=False)


@functools.lru_cache(maxsize=64)
def parsed(text: str) -> dict:
    """The statistics of a literal, parsed once; `table` maps a category to its full-fit encoding."""
    s = json.loads(text)
    return {**s, "table": {c: float(e) for c, e in zip(s["categories"], s["encodings"])},
            "index": {c: i for i, c in enumerate(s["categories"])}, "prior": float(s["prior"])}


def _infer_target(args):
    return FLOAT64.nullable(args[0].optional)


def _ref_target(out, x, stats):
    s = parsed(stats)
    return s["table"].get(_key(x), s["prior"])


def _pl_target(out, x, stats):
    s = parsed(stats)
    cats, prior = s["categories"], s["prior"]
    if not cats:
        return pl().when(x.is_null()).then(None).otherwise(pl().lit(prior, dtype=pl().Float64))
    if isinstance(cats[0], str):
        old = pl().Series(cats, dtype=pl().String)
    else:
        x, old = x.cast(pl().Int64), pl().Series(cats, dtype=pl().Int64)
    return x.replace_strict(old, pl().Series(s["encodings"], dtype=pl().Float64), default=prior,
                            return_dtype=pl().Float64)


def _np_target(out, x, stats):
    s = parsed(stats)
    get, prior = s["table"].get, s["prior"]
    return np.fromiter((get(_key(v), prior) for v in x.tolist()), dtype=np.float64, count=len(x))


def _one_target(out, stats):
    s = parsed(stats)
    get, generic, prior = s["table"].get, np.generic, s["prior"]

    def target_one(x):
        if isinstance(x, generic):  # as `_np_target` reads values (`tolist`)
            x = x.item()
        return get(_key(x), prior)
    return target_one


def _inline_target(out, x, xf, const, stats):
    s = parsed(stats)  # numpy scalars and bools find their category as `_key` would (equal hashes)
    return f"{const(s['table'].get)}({x}, {const(s['prior'])})"


register(ScalarOp(
    name="fitted.target", arity=(2, 2), infer=_infer_target, reference=_ref_target, polars=_pl_target,
    numpy=_np_target, literal_args=(1,), one=_one_target, inline=_inline_target,
    doc="the fitted smoothed label mean of x's category (a fitted target_encode); the prior when unseen"))


def _infer_oof(args):
    return FLOAT64


def _oof_value(x, key, s: dict) -> float:
    priors = s["fold_priors"]
    k = fold_of(key, len(priors))
    i = None if x is None else s["index"].get(_key(x))
    return float(priors[k]) if i is None else float(s["fold_encodings"][k * len(s["categories"]) + i])


def _ref_oof(out, x, key, stats):
    return _oof_value(x, key, parsed(stats))


def _pl_oof(out, x, key, stats):
    s = parsed(stats)

    def batch(col):
        xs, keys = col.struct.field("x").to_list(), col.struct.field("k").to_list()
        return pl().Series([_oof_value(a, b, s) for a, b in zip(xs, keys)], dtype=pl().Float64)
    return pl().struct(x.alias("x"), key.alias("k")).map_batches(batch, return_dtype=pl().Float64)


def _np_oof(out, x, key, stats):
    from astra.ops.registry import Vec

    s = parsed(stats)
    xs = [v if ok else None for v, ok in zip(x.values.tolist(), x.valid.tolist())]
    values = np.array([_oof_value(a, b, s) for a, b in zip(xs, key.values.tolist())], dtype=np.float64)
    return Vec(values, np.ones(len(values), dtype=bool))


register(ScalarOp(
    name="fitted.target_oof", arity=(3, 3), infer=_infer_oof, reference=_ref_oof, polars=_pl_oof,
    numpy=_np_oof, literal_args=(2,), null_policy="custom",
    doc="out-of-fold target encoding of a training row: the statistics of the folds other than its key's"))


# --------------------------------------------------------------------------- fitting


def _encode(x, y, m: float) -> tuple[list, list[float], float]:
    """Categories (sorted), their smoothed means and the prior, over rows with labels `y`."""
    prior = sum(y) / len(y)
    sums: dict = {}
    for c, v in zip(x, y):
        if c is not None:
            s = sums.setdefault(_key(c), [0.0, 0])
            s[0] += v
            s[1] += 1
    cats = sorted(sums)
    return cats, [(sums[c][0] + m * prior) / (sums[c][1] + m) for c in cats], prior


def fit_target(values, labels, keys, what: str, params: tuple) -> dict:
    """Full-fit statistics and those of each fold (fitted on the other folds' rows)."""
    _, m = params
    if labels.null_count() or (labels.dtype.is_float() and bool((~labels.is_finite()).any())):
        raise FitDataError(f"{what}: the label column has null or non-finite values in the training range")
    x, y, k = values.to_list(), [float(v) for v in labels.to_list()], keys.to_list()
    if not y:
        raise FitDataError(f"{what}: no training rows to fit on")
    cats, encs, prior = _encode(x, y, m)
    fold = [fold_of(v) for v in k]
    fold_encs: list[float] = []
    priors: list[float] = []
    for f in range(FOLDS):
        rest = [i for i, g in enumerate(fold) if g != f]
        if not rest:
            raise FitDataError(f"{what}: every training row is in fold {f} (one entity?); "
                               f"cross-fitting needs entities in at least two of the {FOLDS} folds")
        fc, fe, fp = _encode([x[i] for i in rest], [y[i] for i in rest], m)
        table = dict(zip(fc, fe))
        fold_encs += [table.get(c, fp) for c in cats]
        priors.append(fp)
    return {"categories": cats, "encodings": encs, "prior": prior, "smoothing": m, "folds": FOLDS,
            "fold_encodings": fold_encs, "fold_priors": priors}


def spine_digest(keys, times) -> str:
    """The identity of a set of training rows: their (entity key, query time) pairs, in any order
    (sorted first, so a shuffled copy of the training spine is still recognised)."""
    h = hashlib.sha256()
    for k, t in sorted(zip(keys.to_list(), (int(t) for t in times.tolist()))):
        h.update(f"{k!r}\x00{t}\x01".encode())
    return h.hexdigest()[:16]


TRANSFORMS["target_encode"] = Transform(
    "target_encode", None, "fitted.target",
    "the smoothed mean of the label per category of x, (sum + m*prior) / (n + m); cross-fitted in training")
