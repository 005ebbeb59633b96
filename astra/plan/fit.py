"""Fit artifacts: where a service's fitted statistics live and how a plan is bound to them.

A fitted transform call is checked into a placeholder `Apply(op="fit:NAME")` (astra.lang.check_transform).
Each placeholder is a *site* named `feature_id#i` (the i-th fitted call of that feature, parents
before children).  `astra fit` writes the statistics of every site a service reads as a canonical
JSON artifact, `fits/<id>.json` under the project, whose id is the hash of its content, and records
the id in `astra.lock` under `fits`.  Loading a project binds every service whose recorded fit is
present and current: each placeholder becomes its engine operator with the statistics as literals,
and the fit id enters the service's fingerprint.  The engines refuse a placeholder
(`require_fitted`), so an unfitted service never runs.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import attrs

from astra.lang.types import FLOAT64, INT64, STRING, Type
from astra.plan import ir
from astra.plan.fingerprint import digest

FITS_DIR = "fits"
FORMAT = 1
PLACEHOLDER = "fit:"
# the fingerprint prefix of a service whose own fit is missing, stale or in conflict: features are
# shared, so another service's fit may bind its transforms, and the engines must still refuse it
UNFITTED = "unfitted:"


class FitError(Exception):
    """A fit that is missing, stale, unreadable or in conflict; the message is one line."""


def is_placeholder(e: ir.Expr) -> bool:
    return isinstance(e, ir.Apply) and e.op.startswith(PLACEHOLDER)


def feature_sites(f: ir.Feature) -> list[tuple[str, ir.Apply]]:
    """The fitted calls of one feature, keyed `feature_id#i` in pre-order."""
    return [(f"{f.id}#{i}", n) for i, n in enumerate(n for n in ir.walk(f.expr) if is_placeholder(n))]


def service_sites(plan: ir.Plan, svc: ir.Service) -> list[tuple[str, ir.Apply]]:
    """Every fitted call a service computes, its dependencies' first."""
    return [s for f in plan.closure(tuple(o.feature for o in svc.outputs)) for s in feature_sites(f)]


def unfitted(plan: ir.Plan, svc: ir.Service) -> list[str]:
    """The features of a service still holding a fitted call without statistics; every transformed
    feature of a service `bind_recorded` refused, though another service's fit bound them."""
    closure = plan.closure(tuple(o.feature for o in svc.outputs))
    if svc.fingerprint.startswith(UNFITTED):
        return [f.id for f in closure
                if any(isinstance(n, ir.Apply) and n.op.startswith(("fitted.", PLACEHOLDER)) for n in ir.walk(f.expr))]
    return [f.id for f in closure if feature_sites(f)]


def require_fitted(plan: ir.Plan, svc: ir.Service, error=FitError) -> None:
    """Raise `error` (one line) unless every fitted transform the service reads is bound."""
    left = unfitted(plan, svc)
    if left:
        raise error(f"`{svc.id}` applies fitted transforms ({', '.join(f'`{x}`' for x in left[:3])}"
                    f"{', ...' if len(left) > 3 else ''}) but no current fit of it is recorded in astra.lock; "
                    f"run `astra fit PROJECT --service {svc.id} --spine SPINE` first")


# --------------------------------------------------------------------------- binding


def _const(value, t: Type) -> ir.Const:
    return ir.Const(value=value, type=t)


def bound_node(node: ir.Apply, arg: ir.Expr, stats: dict) -> ir.Apply:
    """The engine operator a placeholder becomes with its statistics."""
    from astra.ops.transforms import TRANSFORMS, bound_args

    name = node.op.removeprefix(PLACEHOLDER)
    if name == "target_encode":
        return _bound_target(node, arg, stats)
    literals = bound_args(name, stats)
    if name == "quantile_bucketize":
        consts = (_const(literals[0], Type.list_of(FLOAT64)),)
    elif name in ("ordinal", "one_hot"):
        cats = literals[0]
        consts = (_const(cats, Type.list_of(STRING if cats and isinstance(cats[0], str) else INT64)),)
    elif name == "impute":
        consts = (_const(literals[0], node.type.non_null()),)
    else:
        consts = tuple(_const(v, FLOAT64) for v in literals)
    return ir.Apply(op=TRANSFORMS[name].engine_op, args=(arg, *consts), type=node.type, span=node.span)


def _bound_target(node: ir.Apply, arg: ir.Expr, stats: dict) -> ir.Expr:
    """`fitted.target` with the statistics as one JSON literal (the fold statistics ride along
    for `cross_fit`); a null `x` gets the prior through `fitted.impute`."""
    from astra.ops.target_encode import bound_literal

    target = ir.Apply(op="fitted.target", args=(arg, _const(bound_literal(stats), STRING)),
                      type=FLOAT64.nullable(arg.type.optional), span=node.span)
    if not arg.type.optional:
        return target
    return ir.Apply(op="fitted.impute", args=(target, _const(float(stats["prior"]), FLOAT64)), type=FLOAT64,
                    span=node.span)


def cross_fit(plan: ir.Plan, svc: ir.Service, spine, time_column: str) -> ir.Plan:
    """The plan a backfill of `svc` over `spine` runs: where the spine's rows in a target
    encoding's training range are exactly the rows it was fitted on, that encoding becomes
    out-of-fold (`fitted.target_oof`: each row encoded with the statistics of the other folds)."""
    from astra import io
    from astra.ops.target_encode import spine_digest

    def rewrite(e: ir.Expr, entity: ir.Entity, digests: dict) -> ir.Expr:
        if not isinstance(e, ir.Apply):
            return e
        args = tuple(rewrite(a, entity, digests) for a in e.args)
        if e.op == "fitted.target":
            folds = json.loads(args[1].value)
            span = (folds["start"], folds["end"])
            if span not in digests:
                times = io.spine_times(spine, time_column)
                keep = [(folds["start"] is None or t >= folds["start"]) and (folds["end"] is None or t < folds["end"])
                        for t in times.tolist()]
                keys = io.spine_keys(spine, entity).get_column(entity.keys[0][0]).filter(pl_series(keep))
                digests[span] = spine_digest(keys, times[keep])
            if digests[span] == folds["spine"]:
                key, t = entity.keys[0]
                k = ir.EntityKey(entity=entity.name, field=key, type=t.non_null(), span=e.span)
                return ir.Apply(op="fitted.target_oof", args=(args[0], k, args[1]), type=FLOAT64, span=e.span)
        return attrs.evolve(e, args=args) if args != e.args else e

    closure = {f.id for f in plan.closure(tuple(o.feature for o in svc.outputs))}
    digests: dict = {}
    features = tuple(
        attrs.evolve(f, expr=rewrite(f.expr, plan.entity(f.entity), digests))
        if f.id in closure and any(isinstance(n, ir.Apply) and n.op == "fitted.target" for n in ir.walk(f.expr))
        else f for f in plan.features)
    return attrs.evolve(plan, features=features)


def pl_series(values):
    import polars as pl

    return pl.Series(values, dtype=pl.Boolean)


def bind_expr(e: ir.Expr, key_of: dict[int, str], stats: dict[str, dict]) -> ir.Expr:
    """`e` with the placeholders whose site has statistics replaced by their engine operators."""
    if not isinstance(e, ir.Apply):
        return e
    args = tuple(bind_expr(a, key_of, stats) for a in e.args)
    key = key_of.get(id(e))
    if key is not None and key in stats:
        return bound_node(e, args[0], stats[key])
    return attrs.evolve(e, args=args) if args != e.args else e


def bind_features(plan: ir.Plan, stats: dict[str, dict]) -> ir.Plan:
    """The plan with every site in `stats` bound (other features untouched)."""
    features = []
    for f in plan.features:
        sites = feature_sites(f)
        if any(k in stats for k, _ in sites):
            key_of = {id(n): k for k, n in sites}
            f = attrs.evolve(f, expr=bind_expr(f.expr, key_of, stats))
        features.append(f)
    return attrs.evolve(plan, features=tuple(features))


def check_artifact(plan: ir.Plan, svc: ir.Service, artifact: dict) -> dict[str, dict]:
    """The statistics of a service's sites from its artifact, or `FitError` saying why it does not fit."""
    if artifact.get("service") != svc.id:
        raise FitError(f"the fit is of `{artifact.get('service')}`, not `{svc.id}`")
    if artifact.get("service_fingerprint") != svc.fingerprint:
        raise FitError(f"the fit of `{svc.id}` is stale: it was made for another definition of the service "
                       f"(fingerprint {artifact.get('service_fingerprint')}, now {svc.fingerprint}); "
                       "run `astra fit` again")
    transforms = artifact.get("transforms", {})
    out = {}
    for key, node in service_sites(plan, svc):
        entry = transforms.get(key)
        if not isinstance(entry, dict) or entry.get("transform") != node.op.removeprefix(PLACEHOLDER):
            raise FitError(f"the fit of `{svc.id}` has no statistics for `{key}`; run `astra fit` again")
        out[key] = entry["stats"]
    return out


def bind_service(plan: ir.Plan, svc: ir.Service, artifact: dict, fit_id: str) -> ir.Plan:
    """Bind one service's fitted transforms; its fingerprint then covers the fit id."""
    plan = bind_features(plan, check_artifact(plan, svc, artifact))
    services = tuple(attrs.evolve(s, fingerprint=digest([s.fingerprint, fit_id])) if s.id == svc.id else s
                     for s in plan.services)
    return attrs.evolve(plan, services=services)


# --------------------------------------------------------------------------- artifacts and the lock


def canonical(artifact: dict) -> str:
    """The artifact's canonical text: sorted keys, no spaces, floats as their shortest repr."""
    return json.dumps(artifact, sort_keys=True, separators=(",", ":"), allow_nan=False, ensure_ascii=False)


def fit_id(artifact: dict) -> str:
    return hashlib.sha256(canonical(artifact).encode()).hexdigest()[:16]


def project_dir(root: Path) -> Path:
    return root if root.is_dir() else root.parent


def write_artifact(root: Path, artifact: dict) -> tuple[str, Path]:
    """Write `fits/<id>.json` (content-addressed: the same statistics give the same file)."""
    fid = fit_id(artifact)
    path = project_dir(root) / FITS_DIR / f"{fid}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(canonical(artifact) + "\n", encoding="utf-8")
    return fid, path


def read_artifact(root: Path, fid: str) -> dict:
    """A recorded fit, checked against its id (a hand-edited artifact is refused)."""
    if not (len(fid) == 16 and all(c in "0123456789abcdef" for c in fid)):
        raise FitError(f"`{fid}` is not a fit id")
    path = project_dir(root) / FITS_DIR / f"{fid}.json"
    try:
        artifact = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FitError(f"fit {fid} is recorded in astra.lock but {FITS_DIR}/{fid}.json is missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise FitError(f"{FITS_DIR}/{fid}.json cannot be read: {err}") from None
    if not isinstance(artifact, dict) or fit_id(artifact) != fid:
        raise FitError(f"{FITS_DIR}/{fid}.json does not match its id (edited by hand?); run `astra fit` again")
    return artifact


def recorded_fits(root: Path) -> dict[str, dict]:
    """The lock's `fits` object: service id -> {"id": fit id, "previous": [older ids]}."""
    from astra.plan.lock import LOCK_NAME, LockFileError, read_lock

    try:
        lock = read_lock(project_dir(root) / LOCK_NAME) or {}
    except LockFileError:
        return {}
    fits = lock.get("fits", {})
    return {k: v for k, v in fits.items() if isinstance(v, dict) and isinstance(v.get("id"), str)} \
        if isinstance(fits, dict) else {}


def record_fit(root: Path, service_id: str, fid: str) -> None:
    """Pin `service_id` to fit `fid` in astra.lock; the fit it replaces moves to `previous`."""
    from astra.plan.lock import LOCK_NAME, read_lock

    path = project_dir(root) / LOCK_NAME
    lock = read_lock(path) or {"format": 1, "groups": {}}
    fits = lock.setdefault("fits", {})
    old = fits.get(service_id) or {}
    previous = [*old.get("previous", []), old["id"]] if old.get("id") not in (None, fid) else old.get("previous", [])
    fits[service_id] = {"id": fid, "previous": previous}
    tmp = path.with_suffix(".lock.tmp")
    tmp.write_text(json.dumps(lock, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


def bind_recorded(plan: ir.Plan, root: Path) -> tuple[ir.Plan, tuple[str, ...]]:
    """The plan with every service's recorded fit bound, and notes on fits that could not be
    (missing, stale, in conflict): those services stay unbound, so the engines refuse them.
    Mahalanobis indexes get their recorded fits too (`astra.plan.index_fit`)."""
    from astra.plan.index_fit import bind_indexes

    plan, index_notes = bind_indexes(plan, root)
    notes: list[str] = list(index_notes)
    fits = recorded_fits(root)
    claimed: dict[str, tuple[str, dict]] = {}  # site -> (service, statistics)
    bound: dict[str, str] = {}  # service -> fit id
    for svc in plan.services:
        entry = fits.get(svc.id)
        if entry is None or not service_sites(plan, svc):
            continue
        try:
            stats = check_artifact(plan, svc, read_artifact(root, entry["id"]))
            for key, s in stats.items():
                if key in claimed and claimed[key][1] != s:
                    raise FitError(f"`{svc.id}` and `{claimed[key][0]}` read `{key.partition('#')[0]}` with "
                                   "different fits; a transformed feature has one set of statistics")
        except FitError as err:
            notes.append(str(err))
            continue
        claimed.update({k: (svc.id, s) for k, s in stats.items()})
        bound[svc.id] = entry["id"]
    if not bound:
        return plan, tuple(notes)
    refused = {s.id for s in plan.services if s.id not in bound and service_sites(plan, s)}
    plan = bind_features(plan, {k: s for k, (_, s) in claimed.items()})
    services = tuple(attrs.evolve(s, fingerprint=digest([s.fingerprint, bound[s.id]])) if s.id in bound else
                     attrs.evolve(s, fingerprint=UNFITTED + s.fingerprint) if s.id in refused else s
                     for s in plan.services)
    return attrs.evolve(plan, services=services), tuple(notes)
