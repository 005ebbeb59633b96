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

import numpy as np

from astra.online.table import BLOCK
from astra.plan import ir
from astra.plan.serialize import from_data, to_data

FORMAT = 2


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
                           "n_slots": tb.n_slots, "holes": tb.holes, "cutoff": tb.cutoff, "arrays": arrays,
                           "keys": [list(k) if isinstance(k, tuple) else k for k, _ in keys],
                           "dicts": {c: strings for c, (strings, _) in tb.dicts.items()}})
        manifest = {"format": FORMAT, "plan": to_data(store.plan), "services": store.services,
                    "allowed_lateness": store.allowed_lateness,
                    "watermark": store.watermark, "next_seq": store.next_seq, "tables": tables}
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


def load(cls, path: Path, plan: ir.Plan):
    manifest = json.loads((Path(path) / "manifest.json").read_text())
    if manifest.get("format") != FORMAT:
        raise ValueError(f"{path}: unknown store format {manifest.get('format')!r}")
    if from_data(manifest["plan"]) != plan:
        raise ValueError(f"{path} was saved for a different plan; build a store for this plan and materialize it")
    services = manifest.get("services")
    store = cls(plan, manifest["allowed_lateness"], services=None if services is None else list(services))
    store.watermark, store.next_seq = manifest["watermark"], manifest["next_seq"]
    for tb, meta in zip(store.tables, manifest["tables"]):
        tb.used, tb.n_slots, tb.holes, tb.cutoff = meta["used"], meta["n_slots"], meta["holes"], meta["cutoff"]
        for full, fname in meta["arrays"].items():
            group, k = full.split(":", 1)
            if group == "blocks":
                tb.blocks[k] = np.load(Path(path) / fname, allow_pickle=False)
                continue
            arrs = tb.pos if group == "pos" else tb.slot
            a = _load_array(Path(path) / fname, arrs[k].dtype)
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
        tb.sync_widths()
    return store
