"""Save a store to a directory and load it back: numpy `.npy` per array (string arrays as JSON
lists), and a JSON manifest with the plan, watermarks and each table's key -> slot map.

Writes go to a temporary sibling directory, fsynced and renamed into place, so a crash (or a
power cut) never leaves a half-written state directory behind.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import attrs
import numpy as np

from astra.online.indexes import index_file
from astra.online.layout import TableSpec, input_id, plan_layout
from astra.online.table import BLOCK
from astra.plan import ir
from astra.plan.serialize import from_data, to_data

FORMAT = 3  # 3: float sums keep running sums and per-slot bounds only (2: double-double prefixes)
READABLE = (2, 3)  # formats `load` reads (the float-sum structures of 2 are derived again from the rows)


def _save_array(d: Path, name: str, a: np.ndarray) -> str:
    if a.dtype.kind == "T":  # numpy cannot store StringDType without pickle; no Polars here either
        fname = f"{name}.json"  # (a server saves from a forked child, where Polars' threads are gone)
        (d / fname).write_text(json.dumps(a.tolist()))
    else:
        fname = f"{name}.npy"
        np.save(d / fname, a, allow_pickle=False)
    return fname


def _load_array(path: Path, dtype: np.dtype) -> np.ndarray:
    if path.suffix == ".json":
        return np.array(json.loads(path.read_text()), dtype=dtype)
    if path.suffix == ".arrow":  # written by earlier versions
        import polars as pl

        return np.array(pl.read_ipc(path)["v"].to_list(), dtype=dtype)
    return np.load(path, allow_pickle=False)


def save(store, path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        tables = []
        for ti, tb in enumerate(store.tables):
            arrays = {}
            used = max(-(-tb.used // BLOCK) * BLOCK, BLOCK)  # arenas are whole blocks long
            for group, arrs, n in (("pos", tb.pos, used), ("slot", tb.slot, tb.n_slots)):
                for k, a in arrs.items():
                    safe = k.replace(":", "_")
                    arrays[f"{group}:{k}"] = _save_array(tmp, f"t{ti}_{group}_{safe}", a[:n])
            for k, a in tb.blocks.items():
                arrays[f"blocks:{k}"] = _save_array(tmp, f"t{ti}_blocks_{k.replace(':', '_')}", a[:, :used // BLOCK])
            keys = sorted(tb.keys.items(), key=lambda kv: kv[1])
            tables.append({"name": tb.name, "key_columns": list(tb.key_columns), "used": tb.used,
                           "inputs": [input_id(i) for i in store.specs[ti].inputs],
                           "n_slots": tb.n_slots, "holes": tb.holes, "cutoff": tb.cutoff, "arrays": arrays,
                           "keys": [list(k) if isinstance(k, tuple) else k for k, _ in keys],
                           "dicts": {c: strings for c, (strings, _) in tb.dicts.items()}})
        manifest = {"format": FORMAT, "plan": to_data(store.plan), "services": store.services,
                    "allowed_lateness": store.allowed_lateness, "horizon_lag": store.horizon_lag,
                    "watermark": store.watermark, "next_seq": store.next_seq, "tables": tables}
        index_files = store.indexes.save(tmp)
        if index_files:  # listed so that the files of a store are known from its manifest
            manifest["index_files"] = index_files
        (tmp / "manifest.json").write_text(json.dumps(manifest))
        _fsync_all(tmp)  # on disk before it is renamed into place (and older state is deleted)
        if path.exists():  # swap: old -> trash, new -> path, then drop the old one
            trash = Path(tempfile.mkdtemp(prefix=f".{path.name}.old.", dir=path.parent))
            os.replace(path, trash / "state")
            os.replace(tmp, path)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _fsync_all(d: Path) -> None:
    """fsync every file in a directory, then the directory."""
    for f in d.iterdir():
        fd = os.open(f, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    fd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_manifest(path: Path) -> dict:
    """A saved store's manifest (format checked); the arrays are not read."""
    manifest = json.loads((Path(path) / "manifest.json").read_text())
    if manifest.get("format") not in READABLE:
        raise ValueError(f"{path}: unknown store format {manifest.get('format')!r} (this version reads "
                         f"{', '.join(map(str, READABLE))}); build the store again with `astra materialize`")
    return manifest


def load(cls, path: Path, plan: ir.Plan, migration: Migration | None = None):
    """The store saved at `path`.  Saved for another plan, it loads only with a `migration`
    (`plan_migration`): the tables it keeps are restored, the others start empty (`rebuild` fills them)."""
    manifest = read_manifest(path)
    if migration is None and from_data(manifest["plan"]) != plan:
        raise ValueError(f"{path} was saved for a different plan; build a store for this plan and materialize it")
    services = manifest.get("services")
    store = cls(plan, manifest["allowed_lateness"], services=None if services is None else list(services))
    store.watermark, store.next_seq = manifest["watermark"], manifest["next_seq"]
    store.horizon_lag = manifest.get("horizon_lag", 0)  # saved since the margin existed; before it, none
    # after a migration, only the indexes declared exactly as before are restored; the others start empty
    store.indexes.load(path, None if migration is None else from_data(manifest["plan"]))
    if migration is not None:
        names = {s.name for s in plan.sources}
        store.watermark = {s: w for s, w in store.watermark.items() if s in names}
        store.next_seq = {s: n for s, n in store.next_seq.items() if s in names}
        pairs = [(ti, oi) for ti, oi in migration.kept.items()]
    else:
        pairs = [(ti, ti) for ti in range(len(store.tables))]
    saved = from_data(manifest["plan"]) if migration is not None else plan
    legacy = None
    for ti, oi in pairs:
        meta = manifest["tables"][oi]
        order = meta.get("inputs")
        if order is None:  # saved before inputs were numbered canonically: in the order the plan read them
            if legacy is None:
                legacy = plan_layout(saved, None if services is None else tuple(services), canonical=False).tables
            order = [input_id(i) for i in legacy[oi].inputs]
        now = [input_id(i) for i in store.specs[ti].inputs]
        _load_table(store.tables[ti], meta, Path(path), {j: now.index(x) for j, x in enumerate(order)},
                    manifest["format"] < FORMAT)
    return store


def _renumber(key: str, index: dict[int, int]) -> str:
    """An array name with its aggregation input's saved number replaced by the current one
    ("cnt:3", "dend:3:60000000", "ex:min:3", "lk:3:0", ...; column arrays have none)."""
    parts = key.split(":")
    at = 1 if parts[0] in ("dend", "lk") else len(parts) - 1
    if len(parts) < 2 or not parts[at].isdigit():
        return key
    parts[at] = str(index[int(parts[at])])
    return ":".join(parts)


def _load_table(tb, meta: dict, path: Path, index: dict[int, int], older: bool = False) -> None:
    """Restore a table's arrays; `index` maps the saved numbers of its inputs to the current ones;
    `older`: saved in an earlier format, whose derived structures are derived again."""
    tb.used, tb.n_slots, tb.holes, tb.cutoff = meta["used"], meta["n_slots"], meta["holes"], meta["cutoff"]
    arrays = {}
    for full, fname in meta["arrays"].items():
        group, k = full.split(":", 1)
        arrays[f"{group}:{_renumber(k, index)}"] = fname
    meta = {**meta, "arrays": arrays}
    for full, fname in arrays.items():
        group, k = full.split(":", 1)
        if group == "blocks":
            tb.blocks[k] = np.load(path / fname, allow_pickle=False)
            continue
        arrs = tb.pos if group == "pos" else tb.slot
        if k not in arrs:  # kept by an earlier version only (e.g. the per-row `slo` error prefixes)
            continue
        if older and (k.startswith("sem:") or (k.startswith("shi:") and arrs[k].dtype.kind == "f")):
            continue  # a float sum's prefixes and bound: format 2 kept others; derived again below
        a = _load_array(path / fname, arrs[k].dtype)
        if group == "slot":
            b = np.zeros(max(len(a), 16), a.dtype)
            b[:len(a)] = a
            a = b
        arrs[k] = a
    # running state this version keeps and the saving one did not (e.g. evicted extremes of a
    # table that never evicted then): empty, sized like the other per-slot arrays
    size = max(len(a) for a in tb.slot.values())
    for k, a in tb.slot.items():
        if len(a) < size:
            tb.slot[k] = np.concatenate([a, np.zeros(size - len(a), a.dtype)])
    tb.keys = {tuple(k) if isinstance(k, list) else k: s for s, k in enumerate(meta["keys"], start=1)}
    for c, strings in meta.get("dicts", {}).items():
        tb.dicts[c] = (list(strings), {v: j for j, v in enumerate(strings)})
    # derived state the saving version did not keep, or kept in another form (float sums' bounds)
    tb.sync_widths(derive=older or any(f"slot:{k}" not in meta["arrays"] for k in tb.slot if k.startswith("shm:")))


# --------------------------------------------------------------------------- plan changes


def table_signature(spec: TableSpec) -> tuple:
    """What a table's saved state depends on: its source, key and entity, the columns it stores
    (with their types), its aggregation inputs in order, its retention and whether as-of reads it.
    Two plans whose tables have equal signatures store the same arrays for the same rows."""
    src = spec.source
    return (src.name, spec.key.columns, spec.entity.name, tuple((c, src.column_type(c)) for c in spec.columns),
            tuple((i.column, i.where, frozenset(i.needs), frozenset(i.windows), i.lifetime, i.last_k)
                  for i in spec.inputs),
            spec.max_window, spec.mergeable, spec.asof)


def table_name(spec: TableSpec) -> str:
    return f"{spec.source.name} by {', '.join(spec.key.columns)}"


@attrs.frozen
class Migration:
    """How a store saved for one plan becomes a store of another: `kept` maps each new table to
    the saved table it restores (same signature); the other new tables are `rebuilt` from the
    source files, the pushes the snapshot holds (kept in the state) and the log; saved tables the
    new plan no longer reads are `dropped`."""

    kept: dict[int, int]
    rebuilt: tuple[int, ...]
    names: tuple[str, ...]  # the new tables' names
    dropped: tuple[str, ...]
    pushed: dict[str, int]  # per source of a rebuilt table: pushed rows the snapshot holds, replayed into it
    # index versions the state does not hold (new, declared differently, or saved before indexes had
    # versions) that are rebuilt like tables; and those that cannot be (rows lost), with why
    indexes: tuple[str, ...] = ()
    unbuildable: dict[str, str] = attrs.field(factory=dict)

    def describe(self) -> str:
        kept = ", ".join(self.names[i] for i in self.kept) or "none"
        rebuilt = ", ".join(self.names[i] for i in self.rebuilt) or "none"
        out = f"kept {len(self.kept)} table(s) ({kept}), rebuilt {len(self.rebuilt)} ({rebuilt})"
        if self.dropped:
            out += f", dropped {len(self.dropped)} no longer read ({', '.join(self.dropped)})"
        if self.indexes:
            out += f", rebuilt {len(self.indexes)} index(es) ({', '.join(self.indexes)})"
        for src, n in sorted(self.pushed.items()):
            out += f"; {n} row(s) pushed to `{src}` before the snapshot replayed into its rebuilt tables"
        for xid in sorted(self.unbuildable):
            out += f"; index {xid} cannot be rebuilt and answers 409 index_not_built"
        return out


class MigrationError(ValueError):
    """The saved store cannot become a store of the new plan without losing acknowledged rows."""


def plan_migration(cls, path: Path, plan: ir.Plan, data_root=None, pushed=None) -> Migration | None:
    """None when the store at `path` was saved for `plan`; else how to migrate it (`Migration`).

    A saved table whose signature the new plan has is kept as it is.  A new or changed table is
    rebuilt from the source files under `data_root`, then the pushes the snapshot holds (`pushed()`:
    their log records `{"source", "rows"}`, in push order, which a server keeps in its state
    directory), then the log's rows (replayed by the caller).  When the saved store holds rows of
    its source that are in neither (pushed before the state kept its pushes, or files that changed
    or are not given), the rebuilt table would silently lack them: `MigrationError` naming them."""
    manifest = read_manifest(path)
    old_plan = from_data(manifest["plan"])
    indexes = _indexes_to_rebuild(Path(path), manifest, old_plan, plan)
    if old_plan == plan and not indexes:
        return None
    services = manifest.get("services")
    old_services = None if services is None else tuple(services)
    new_services = old_services
    if new_services is not None:
        known = {s.id for s in plan.services}
        new_services = tuple(s for s in new_services if s in known)
    old_specs = plan_layout(old_plan, old_services).tables
    new_specs = plan_layout(plan, new_services).tables
    by_sig = {table_signature(s): i for i, s in enumerate(old_specs)}
    kept, rebuilt = {}, []
    for ti, spec in enumerate(new_specs):
        oi = by_sig.get(table_signature(spec))
        if oi is None:
            rebuilt.append(ti)
        else:
            kept[ti] = oi
    dropped = tuple(table_name(s) for i, s in enumerate(old_specs) if i not in kept.values())
    counts: dict[str, int] = {}
    sources = sorted({new_specs[ti].source.name for ti in rebuilt} | {plan.find_index(x).source for x in indexes})
    unbuildable: dict[str, str] = {}
    if pushed is not None and any(manifest["next_seq"].get(src, 0) for src in sources):
        try:
            for rec in pushed():
                counts[rec["source"]] = counts.get(rec["source"], 0) + len(rec["rows"])
        except Exception as exc:  # the reader is the caller's, and so are its errors' types
            raise MigrationError(f"cannot read the pushes kept in the state directory: {exc}") from None
    for src in sources:
        saved = manifest["next_seq"].get(src, 0)
        from_files = 0
        indexed = old_services is None and any(x.source == src for x in old_plan.indexes or ())  # read for an index
        if saved and data_root is not None and (indexed or any(s.source.name == src for s in old_specs)):
            old = cls(old_plan, manifest["allowed_lateness"], services=None if old_services is None
                      else list(old_services))
            from_files = len(old.read_source(old_plan.source(src), data_root)[0])
        if saved > from_files + counts.get(src, 0):
            missing = saved - from_files - counts.get(src, 0)
            tables = [table_name(new_specs[ti]) for ti in rebuilt if new_specs[ti].source.name == src]
            what = (f"{missing} row(s) of `{src}` stored before the snapshot are neither in the source files nor "
                    f"in the pushes the state directory keeps (pushed before it kept them)" if data_root is not None
                    else f"{saved} row(s) of `{src}` are in the saved store only (read from source files, or "
                    f"pushed: give --data-root to rebuild from the files)")
            if not tables:  # indexes alone: the tables serve on, the indexes refuse to answer
                for xid in indexes:
                    if plan.find_index(xid).source == src:
                        unbuildable[xid] = (f"index `{xid}` is not in the state {path} was restored from (declared "
                                            f"since, changed, or saved before indexes had versions) and cannot be "
                                            f"built again: {what}; start a new --state from the source files")
                continue
            raise MigrationError(
                f"the plan adds or changes {', '.join(tables)}, which would be rebuilt without them: {what}; "
                f"serve the previous project on this state directory, or start a new --state from the source files")
    counts = {src: n for src, n in counts.items() if src in sources and n}
    return Migration(kept, tuple(rebuilt), tuple(table_name(s) for s in new_specs), dropped, counts,
                     tuple(x for x in indexes if x not in unbuildable), unbuildable)


def _indexes_to_rebuild(path: Path, manifest: dict, old_plan: ir.Plan, plan: ir.Plan) -> tuple[str, ...]:
    """The index versions a store of `plan` keeps that the state at `path` cannot restore (no file
    of the same declaration) although their source has stored rows."""
    if manifest.get("services") is not None:  # a store for some services keeps no index
        return ()
    old = {x.id: x.fingerprint for x in old_plan.indexes or ()}
    return tuple(x.id for x in plan.indexes or ()
                 if manifest["next_seq"].get(x.source, 0)
                 and not (old.get(x.id) == x.fingerprint and (path / index_file(x.id)).exists()))


def rebuild(store, migration: Migration, data_root=None, pushed=None) -> dict[str, int]:
    """Fill the rebuilt tables and indexes of a migrated store from the source files (as
    `Store.materialize` reads them), then from the pushes the snapshot holds (`pushed()`, as for
    `plan_migration`); an index that cannot be rebuilt is marked so (it answers no search).
    Returns the rows read per source."""
    from astra.online.ingest import from_dicts
    from astra.online.store import _with_key

    store.indexes.unbuilt.update(migration.unbuildable)
    counts: dict[str, int] = {}
    if not (migration.rebuilt or migration.indexes) or (data_root is None and not migration.pushed):
        return counts
    rows: dict[str, list[dict]] = {}
    if migration.pushed and pushed is not None:
        for rec in pushed():
            if rec["source"] in migration.pushed:
                rows.setdefault(rec["source"], []).extend(rec["rows"])
    for src in store.plan.sources:
        tis = [ti for ti in migration.rebuilt if store.specs[ti].source.name == src.name]
        xids = {x for x in migration.indexes if store.plan.find_index(x).source == src.name}
        if not tis and not xids:
            continue
        batches = [store.read_source(src, data_root)[:2]] if data_root is not None else []
        if rows.get(src.name):
            batches.append(from_dicts(src, rows[src.name]))  # after the files, as they were pushed
        for times, cols in batches:
            counts[src.name] = counts.get(src.name, 0) + len(times)
            for ti in tis:
                t_rows, t_cols = _with_key(times, cols, store.specs[ti].key.columns)
                if len(t_rows):
                    store._ingest_table(store.tables[ti], t_rows, t_cols, bulk=True)
            if xids:
                store.indexes.ingest(src.name, times, cols, only=xids)
            if len(times):
                t_max = int(times.max())
                store.watermark[src.name] = max(store.watermark.get(src.name, t_max), t_max)
        if src.name not in store.next_seq and counts.get(src.name):
            store.next_seq[src.name] = counts[src.name]
        if src.name in store.watermark:
            store._evict(src.name)
        for ti in tis:
            store.tables[ti].shrink()
    return counts
