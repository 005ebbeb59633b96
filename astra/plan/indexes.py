"""A plan's vector indexes: built from the checked `index` declarations, found by name, described."""

from __future__ import annotations

import attrs

from astra.lang.index_check import MEMORY
from astra.plan import ir
from astra.plan.fingerprint import digest
from astra.vectors.hnsw import HnswParams

DEFAULT_METRIC, DEFAULT_KIND = "cosine", "exact"


def vector_indexes(syms) -> tuple[ir.VectorIndex, ...] | None:
    """The valid index declarations (None when there are none, so plans without any keep their data)."""
    out = []
    for (name, version), d in sorted(syms.indexes.items()):
        columns = {f.name.value: f.type.type for f in syms.sources[d.source.value].decl.columns}
        kind = d.kind.value if d.kind else DEFAULT_KIND
        hnsw = None
        given = {n.value: v for n, v in d.settings}
        if kind == "hnsw":
            hnsw = tuple((k, given.get(k, default)) for k, default in attrs.asdict(HnswParams()).items())
        limit = given.get(MEMORY)
        node = ir.VectorIndex(name=name, version=version, source=d.source.value, column=d.column.value,
                              dim=columns[d.column.value].size, metric=d.metric.value if d.metric else DEFAULT_METRIC,
                              kind=kind, filters=tuple(f.value for f in d.filters),
                              owner=d.meta.owner, description=d.meta.description, span=d.name.span, hnsw=hnsw,
                              memory_limit=None if limit is None else limit << 20)
        out.append(node)
    return tuple(out) or None


def index_fingerprint(plan: ir.Plan, x: ir.VectorIndex) -> str:
    """What decides an index's answers: the source's kind, time and key, the types of the columns
    it reads, its metric, kind and filters.  Other columns of the source do not matter, and neither
    do the version, owner, description and memory limit.  This is what astra.lock records."""
    return digest(index_data(plan, x))


def built_fingerprint(plan: ir.Plan, x: ir.VectorIndex) -> str:
    """What decides the index a store builds: its answers' fingerprint and its memory limit, so a
    restored store rebuilds an index whose limit changed (`VectorIndex.fingerprint`)."""
    fp = index_fingerprint(plan, x)
    return fp if x.memory_limit is None else digest([fp, x.memory_limit])


def index_data(plan: ir.Plan, x: ir.VectorIndex) -> dict:
    src = plan.source(x.source)
    types = dict(src.columns)
    return {"source": {"name": src.name, "kind": src.kind, "time": src.time,
                       "keys": {e: list(k.columns) for e, k in zip(src.entities, src.keys)}},
            "column": [x.column, str(types[x.column])], "metric": x.metric, "kind": x.kind,
            "filters": [[f, str(types[f])] for f in x.filters], **({"hnsw": dict(x.hnsw)} if x.hnsw else {})}


def find(plan: ir.Plan, name: str, version: int | None = None) -> ir.VectorIndex:
    """Version `version` of the index called `name` (None: its only version); KeyError saying what
    there is otherwise."""
    same = [x for x in plan.indexes or () if x.name == name]
    if not same:
        have = ", ".join(sorted({x.name for x in plan.indexes or ()})) or "none"
        raise KeyError(f"unknown index `{name}`; indexes: {have}")
    for x in same:
        if x.version == version or (version is None and len(same) == 1):
            return x
    versions = ", ".join(f"v{x.version}" for x in same)
    if version is None:
        raise KeyError(f"index `{name}` has several versions ({versions}): give `version`")
    raise KeyError(f"index `{name}` has no version {version}; available: {versions}")


def describe(plan: ir.Plan, x: ir.VectorIndex) -> dict:
    """The declaration as users read it (JSON-ready)."""
    src = plan.source(x.source)
    (key, key_type), = plan.entity(src.entities[0]).keys
    return {"name": x.name, "version": x.version, "source": x.source, "column": x.column, "dim": x.dim,
            "metric": x.metric, "kind": x.kind, "filters": list(x.filters), "key": {"name": key, "type": str(key_type)},
            "fingerprint": index_fingerprint(plan, x)}  # the declaration's, as astra.lock records it


def _fit_state(x: ir.VectorIndex) -> str:
    return "the covariance recorded in astra.lock" if x.covariance else f"none: run astra fit PROJECT --index {x.id}"


def explain_index(plan: ir.Plan, x: ir.VectorIndex) -> str:
    """`astra explain INDEX`: what the index holds and how it answers."""
    d = describe(plan, x)
    lines = [f"index {x.name} v{x.version}",
             f"  on:          {x.source}.{x.column} (vector<float32, {x.dim}>), snapshot keyed by "
             f"{d['key']['name']}: {d['key']['type']}",
             f"  metric:      {x.metric}", f"  kind:        {x.kind}",
             f"  filters:     {', '.join(x.filters) or 'none'}",
             *(["  graph:       " + ", ".join(f"{k} {v}" for k, v in x.hnsw)] if x.hnsw else []),
             *([f"  memory:      at most {x.memory_limit >> 20:,} MiB"] if x.memory_limit else []),
             *([f"  fit:         {_fit_state(x)}"] if x.metric == "mahalanobis" else []),
             f"  fingerprint: {d['fingerprint']}",
             f"  served:      POST /v1/neighbors {{\"index\": \"{x.name}\", \"version\": {x.version}, ...}} "
             "(docs/vectors.md); a search at `at` sees the versions written strictly before it"]
    if x.description:
        lines.insert(1, f"  {x.description}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------ astra.lock
# A released index version is locked like a group version: its answers may never change, so a
# changed declaration (column, metric, kind, filters, or the type of a column it reads) needs a
# new version, which clients move to by asking for it.


def lock_entry(plan: ir.Plan, x: ir.VectorIndex) -> dict:
    """What `astra.lock` records for an index version: its fingerprint and the declaration in words."""
    d = index_data(plan, x)
    return {"fingerprint": index_fingerprint(plan, x), "on": f"{x.source}.{x.column}", "dim": x.dim,
            "metric": x.metric, "kind": x.kind, "filters": list(x.filters),
            **({"hnsw": dict(x.hnsw)} if x.hnsw else {}),
            "reads": [f"{c}: {t}" for c, t in (d["column"], *d["filters"])] + [
                f"time {d['source']['time']}", *(f"key {', '.join(k)}" for k in d["source"]["keys"].values())]}


def lock_shape_problem(entries: object) -> str:
    """What keeps the lock's `indexes` from being comparable, or ""."""
    if not isinstance(entries, dict):
        return "`indexes` must be an object"
    for xid, e in entries.items():
        if not (isinstance(e, dict) and isinstance(e.get("fingerprint"), str)):
            return f"index `{xid}` needs a `fingerprint`"
    return ""


def changed_in_lock(plan: ir.Plan, locked: dict) -> tuple[list[str], list[str]]:
    """The index versions whose fingerprint differs from the lock, and those not in it yet."""
    old = locked.get("indexes") or {}
    changed = [x.id for x in plan.indexes or ()
               if x.id in old and old[x.id]["fingerprint"] != index_fingerprint(plan, x)]
    new = [x.id for x in plan.indexes or () if x.id not in old]
    return changed, new


def check_index_lock(plan: ir.Plan, locked: dict, diags, *, add_new: bool, run: str | None,
                     allow_changed: bool) -> tuple[dict[str, dict], list[str], list[str]]:
    """`astra.lock`'s rules for index versions (see `astra.plan.lock.check_lock`, which calls this):
    the lock's new `indexes`, notes, and the versions an engine runs unreleased."""
    from astra.plan.lock import LOCK_NAME

    old = locked.get("indexes") or {}
    new: dict[str, dict] = dict(old)
    notes: list[str] = []
    fresh: list[str] = []
    for x in plan.indexes or ():
        entry = lock_entry(plan, x)
        before = old.get(x.id)
        at = (x.span,) if x.span is not None else ()
        if before is None:
            if run is not None:
                fresh.append(x.id)
            elif add_new:
                new[x.id] = entry
                notes.append(f"added index {x.id} to {LOCK_NAME}")
            else:
                diags.error("E0602", f"index `{x.id}` is a new version not yet in {LOCK_NAME}", *at,
                            help="release it with `astra compile --lock`, and commit the lock file")
            continue
        if before["fingerprint"] != entry["fingerprint"]:
            changes = describe_index_changes(before, entry)
            if allow_changed:
                notes.append(f"running index `{x.id}` declared unlike {LOCK_NAME} ({run}): {changes[0]}")
                continue
            free = max(y.version for y in plan.indexes if y.name == x.name) + 1
            diags.error("E0601", f"index `{x.id}` changed but its version did not: {changes[0]}", *at,
                        help=f"declare the change as `index {x.name} v{free} on ...` and move clients to "
                        f"`\"version\": {free}`; a released index keeps its answers"
                        + ("" if len(changes) == 1 else "; also: " + "; ".join(changes[1:]))
                        + (f"; to run it unreleased while developing, pass {run}" if run else ""))
            continue
        if before != entry and run is None:  # the same answers, described anew
            new[x.id] = entry
            notes.append(f"the description of index {x.id} in {LOCK_NAME} was brought up to date")
    if run is None:
        ids = {x.id for x in plan.indexes or ()}
        notes.extend(f"index {xid} is in {LOCK_NAME} but no longer defined" for xid in old if xid not in ids)
    return new, notes, fresh


def describe_index_changes(before: dict, after: dict) -> list[str]:
    """How a locked index declaration changed, in words ("metric cosine -> euclidean")."""
    out = []
    for field in ("on", "dim", "metric", "kind"):
        if before.get(field) != after.get(field):
            out.append(f"{field} {before.get(field)} -> {after.get(field)}")
    for setting in sorted((before.get("hnsw") or {}).keys() & (after.get("hnsw") or {}).keys()):
        if before["hnsw"][setting] != after["hnsw"][setting]:
            out.append(f"{setting} {before['hnsw'][setting]} -> {after['hnsw'][setting]}")
    if before.get("filters") != after.get("filters"):
        out.append(f"filters {', '.join(before.get('filters') or ()) or 'none'} -> "
                   f"{', '.join(after.get('filters') or ()) or 'none'}")
    old, new = set(before.get("reads") or ()), set(after.get("reads") or ())
    if old != new and not out:
        out.append("what it reads changed (" + ", ".join([f"-{c}" for c in sorted(old - new)]
                                                        + [f"+{c}" for c in sorted(new - old)]) + ")")
    return out or ["its declaration changed"]
