"""`astra.lock`: the fingerprints of every released group version, committed with the project.

A locked version's logic may never change: every entry point that builds a plan (`astra compile`,
the engines' commands, `Project.load`) compares it with the lock and refuses a changed data
fingerprint, naming the feature and the change (e.g. "window 7d -> 8d") and the services that pin
the version.  Metadata-only changes are allowed and recorded by `astra compile`.  New versions
enter the lock only when asked (`astra compile --lock`); until then the engines run them as
versions under development, with a note.
"""

from __future__ import annotations

import difflib
import json
import re
from pathlib import Path

from astra.diagnostics import Collector
from astra.plan import ir
from astra.plan.fingerprint import feature_fingerprints, reads
from astra.plan.pretty import expr as pretty
from astra.times import DURATION_PATTERN

LOCK_NAME = "astra.lock"
FORMAT = 1


def lock_entry(plan: ir.Plan, g: ir.Group, fps: dict[str, str]) -> dict:
    """What the lock records for a group version: fingerprints, feature summaries, source schemas."""
    features = {}
    for fid in g.features:
        f = plan.feature(fid)
        features[f.name] = {"type": str(f.type), "expr": pretty(f.expr), "default": f.default,
                            "fingerprint": fps[f.id], "reads": reads(f)}
    sources = sorted({n.key.source for fid in g.features for n in ir.walk(plan.feature(fid).expr)
                      if isinstance(n, ir.Aggregate | ir.AsOf)})
    return {"data": g.data_fingerprint, "meta": g.meta_fingerprint, "features": features,
            "sources": {s: [f"{c}: {t}" for c, t in plan.source(s).columns] for s in sources}}


class LockFileError(Exception):
    """The lock file exists but is not one astra wrote (a merge conflict, a hand edit gone wrong)."""

    def __init__(self, message: str, offset: int = 0):
        super().__init__(message)
        self.offset = offset  # where in the file, for the diagnostic


def read_lock(path: Path) -> dict | None:
    """The lock file's content, or None when there is none; `LockFileError` when it is malformed."""
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise LockFileError(f"not valid JSON: {err.msg}", err.pos) from None
    except (OSError, UnicodeDecodeError) as err:
        raise LockFileError(f"cannot be read: {getattr(err, 'strerror', None) or err}") from None
    problem = _shape_problem(data)
    if problem:
        raise LockFileError(problem)
    return data


def _shape_problem(data) -> str:
    """What keeps `data` from being a lock `check_lock` can compare with, or ""."""
    if not isinstance(data, dict) or not isinstance(data.get("groups", {}), dict):
        return "expected an object with a `groups` object"
    for gid, entry in data.get("groups", {}).items():
        if not (isinstance(entry, dict) and isinstance(entry.get("data"), str) and isinstance(entry.get("meta"), str)
                and isinstance(entry.get("features"), dict) and isinstance(entry.get("sources", {}), dict)):
            return f"group `{gid}` needs `data`, `meta` and `features`"
        for name, f in entry["features"].items():
            if not (isinstance(f, dict) and all(isinstance(f.get(k), str) for k in ("type", "expr", "fingerprint"))
                    and isinstance(f.get("reads", []), list)):
                return f"feature `{name}` of `{gid}` needs `type`, `expr` and `fingerprint`"
        if not all(isinstance(cols, list) for cols in entry.get("sources", {}).values()):
            return f"the sources of `{gid}` must be lists of columns"
    if "indexes" in data:
        from astra.plan.indexes import lock_shape_problem

        return lock_shape_problem(data["indexes"])
    return ""


def released(locked: dict) -> dict:
    """The part of a lock `check_lock` rewrites: {"groups", and "indexes" when there are any}."""
    out = {"groups": locked.get("groups") or {}}
    if locked.get("indexes"):
        out["indexes"] = locked["indexes"]
    return out


def write_lock(path: Path, content: dict) -> None:
    """Write the lock (`check_lock`'s content: groups, indexes) atomically, keys sorted so diffs stay small."""
    data = {"format": FORMAT, "groups": dict(sorted(content["groups"].items()))}
    if content.get("indexes"):
        data["indexes"] = dict(sorted(content["indexes"].items()))
    try:  # the services' fits (`astra fit`) are kept as they are
        fits = (read_lock(path) or {}).get("fits")
    except LockFileError:
        fits = None
    if fits:
        data["fits"] = fits
    tmp = path.with_suffix(".lock.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


def unlocked(plan: ir.Plan, locked: dict) -> tuple[list[str], list[str]]:
    """The group versions whose logic differs from the lock, and those not in it yet: a cheap
    comparison of data fingerprints, for a plan loaded from `build/plan.json`."""
    old = locked.get("groups", {})
    changed = [g.id for g in plan.groups if g.id in old and old[g.id]["data"] != g.data_fingerprint]
    new = [g.id for g in plan.groups if g.id not in old]
    if plan.indexes:
        from astra.plan.indexes import changed_in_lock

        more_changed, more_new = changed_in_lock(plan, locked)
        changed, new = changed + more_changed, new + more_new
    return changed, new


def under_development(new: list[str]) -> str:
    """The note the engines print for versions they run before they are released."""
    return (f"not in {LOCK_NAME} yet, run as under development: {', '.join(new)} "
            "(release with `astra compile --lock`)")


def check_lock(plan: ir.Plan, locked: dict, diags: Collector, *, add_new: bool,
               run: str | None = None, allow_changed: bool = False) -> tuple[dict, list[str]]:
    """Compare the plan with the lock. Returns the lock's new content ({"groups", and "indexes"
    when there are any}: `write_lock` writes it) and notes on what changed.  Index versions
    follow the same rules (`astra.plan.indexes.check_index_lock`).

    `run` is set by an engine about to run the plan (nothing is written then) to the name of its
    development escape hatch (`--allow-unlocked`, `allow_unlocked=True`): new versions are a note
    instead of E0602, and the E0601 help names the hatch; `allow_changed` turns E0601 into a note."""
    old = locked.get("groups", {})
    new: dict[str, dict] = dict(old)
    notes: list[str] = []
    fresh: list[str] = []
    fps = feature_fingerprints(plan)
    for g in plan.groups:
        entry = lock_entry(plan, g, fps)
        before = old.get(g.id)
        span = g.span
        if before is None:
            if run is not None:
                fresh.append(g.id)
            elif add_new:
                new[g.id] = entry
                notes.append(f"added {g.id} to {LOCK_NAME}")
            else:
                diags.error("E0602", f"`{g.id}` is a new version not yet in {LOCK_NAME}", *_at(span),
                            help="release it with `astra compile --lock`, and commit the lock file")
            continue
        if before["data"] != entry["data"]:
            changes = describe_changes(before, entry, old, fps)
            if allow_changed:
                notes.append(f"running `{g.id}` with logic that differs from {LOCK_NAME} ({run}): {changes[0]}")
                continue
            pinned = [s.id for s in plan.services if any(o.feature.startswith(g.id + ".") for o in s.outputs)]
            free = max(x.version for x in plan.groups if x.name == g.name) + 1
            diags.error("E0601", f"the logic of `{g.id}` changed but its version did not: {changes[0]}", *_at(span),
                        help=f"release the change as `features {g.name} v{free} ...` and move services to it; "
                        "released versions never change"
                        + (f"; pinned by {', '.join(pinned)}" if pinned else "")
                        + ("" if len(changes) == 1 else "; also: " + "; ".join(changes[1:]))
                        + (f"; to run it unreleased while developing, pass {run}" if run else ""))
            continue
        if before["meta"] != entry["meta"] and run is None:
            new[g.id] = entry
            notes.append(f"metadata of {g.id} changed (owner, description or tags); recorded in {LOCK_NAME}")
    content = {"groups": new}
    if plan.indexes or locked.get("indexes"):
        from astra.plan.indexes import check_index_lock

        indexes, more, fresh_indexes = check_index_lock(plan, locked, diags, add_new=add_new, run=run,
                                                        allow_changed=allow_changed)
        notes.extend(more)
        fresh.extend(fresh_indexes)
        if indexes:
            content["indexes"] = indexes
    if fresh:
        notes.append(under_development(fresh))
    if run is None:
        for gid in old:
            if gid not in {g.id for g in plan.groups}:
                notes.append(f"{gid} is in {LOCK_NAME} but no longer defined")
    return content, notes


def _at(span):
    return (span,) if span is not None else ()


def describe_changes(before: dict, after: dict, locked: dict | None = None, fps: dict | None = None) -> list[str]:
    """Human summaries of how locked logic changed, most specific first.

    `locked` (the old lock's groups) and `fps` (current feature fingerprints) let a feature whose
    own logic is unchanged name the feature it reads that changed."""
    out = []
    bf, af = before["features"], after["features"]
    for name in bf:
        if name not in af:
            out.append(f"feature `{name}` was removed")
    for name in af:
        if name not in bf:
            out.append(f"feature `{name}` was added")
    for name in sorted(bf.keys() & af.keys()):
        b, a = bf[name], af[name]
        if b["fingerprint"] == a["fingerprint"]:
            continue
        if b["type"] != a["type"]:
            out.append(f"`{name}`: type {b['type']} -> {a['type']}")
        if b["expr"] != a["expr"]:
            out.append(f"`{name}`: {token_change(b['expr'], a['expr'])}")
        elif b.get("default") != a.get("default"):
            out.append(f"`{name}`: default {b.get('default')!r} -> {a.get('default')!r}")
        elif b["fingerprint"] != a["fingerprint"] and b["type"] == a["type"]:
            now = fps or {}
            changed = [r for r in a.get("reads", []) if _locked_fingerprint(locked, r) not in (None, now.get(r))]
            if changed:
                out.append(f"`{name}` reads `{changed[0]}`, whose logic changed")
            else:
                out.append(f"`{name}`: a source it reads changed schema")
    for s in before.get("sources", {}).keys() & after.get("sources", {}).keys():
        if before["sources"][s] != after["sources"][s]:
            old, new = set(before["sources"][s]), set(after["sources"][s])
            diff = ", ".join([f"-{c}" for c in sorted(old - new)] + [f"+{c}" for c in sorted(new - old)])
            out.append(f"source `{s}` schema changed ({diff})")
    return sorted(set(out), key=out.index) or ["a referenced group or entity changed"]


def _locked_fingerprint(locked: dict | None, feature_id: str) -> str | None:
    gid, _, name = feature_id.partition(".")
    return ((locked or {}).get(gid, {}).get("features", {}).get(name) or {}).get("fingerprint")


_TOKEN = re.compile(rf"{DURATION_PATTERN}\b|[A-Za-z_][\w@.]*|\d+\.?\d*(?:e-?\d+)?|\"(?:[^\"\\]|\\.)*\"|\S")


def token_change(before: str, after: str) -> str:
    """The smallest token-level difference: "window 7d -> 8d" or "`a` -> `b`"."""
    b, a = _TOKEN.findall(before), _TOKEN.findall(after)
    ops = [op for op in difflib.SequenceMatcher(a=b, b=a, autojunk=False).get_opcodes() if op[0] != "equal"]
    if len(ops) == 1 and ops[0][0] == "replace":
        _, i1, i2, j1, j2 = ops[0]
        old, new = " ".join(b[i1:i2]), " ".join(a[j1:j2])
        if re.fullmatch(DURATION_PATTERN, old) and re.fullmatch(DURATION_PATTERN, new):
            return f"window {old} -> {new}"
        return f"`{old}` -> `{new}` in `{after}`"
    return f"`{before}` -> `{after}`"
