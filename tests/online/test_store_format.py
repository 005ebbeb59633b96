"""Saved stores across the change of float-sum structures (astra/online/persist.py): a store
saved in format 2 (double-double prefixes `shi`/`slo` per row, bounds `sem`/`serr` per entity)
loads, its float sums derived again from its rows, and answers as the store it was saved from; a
format this version does not read is refused with a message saying to materialize again."""

from __future__ import annotations

import json

import numpy as np
import pytest
from agg_engines import check, compile_features, online

from astra.online import Store

S = 1_000_000  # µs
T = 10**6 * S

PLAN = compile_features("a: float64?", """
    s10: float64 = sum(ev.a, 10s)
    m10: float64? = mean(ev.a, 10s)
    life: float64 = sum(ev.a)""")


def _saved(tmp_path):
    """A store fed one row a second for a minute (evicting), then a late tiny amount, saved."""
    store = Store(PLAN, allowed_lateness=0)
    for j in range(60):
        store.push("ev", [dict(id=1 + j % 2, ts=T + j * S, a=1e12 if j < 30 else 0.25 * j)])
    store.save(tmp_path / "store")
    return tmp_path / "store"


def _as_format_2(path) -> None:
    """Rewrite a saved store the way format 2 laid it out: float prefixes and their bounds in the
    older arrays (here garbage, which a loader must not trust), `slo`/`serr` beside them."""
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["format"] = 2
    for t, table in enumerate(manifest["tables"]):
        arrays = table["arrays"]
        for key in [k for k in arrays if k.startswith(("pos:shi:", "slot:sem:"))]:
            a = np.load(path / arrays[key])
            np.save(path / arrays[key], np.full_like(a, 7.0))
            old = key.replace("shi:", "slo:").replace("sem:", "serr:")
            np.save(path / f"t{t}_{old.replace(':', '_')}.npy", np.full_like(a, 3.0))
            arrays[old] = f"t{t}_{old.replace(':', '_')}.npy"
        for key in [k for k in arrays if k.startswith(("slot:shm:", "slot:slast:"))]:
            del arrays[key]  # format 2 had no such arrays
    (path / "manifest.json").write_text(json.dumps(manifest))


def test_a_format_2_store_loads_and_answers_from_its_rows(tmp_path):
    path = _saved(tmp_path)
    spine = [dict(id=1, ts=T + 60 * S), dict(id=2, ts=T + 61 * S), dict(id=1, ts=T + 65 * S)]
    want = online(Store.load(path, PLAN), PLAN, spine)["single"]
    # rows 30..59: 0.25 * j over the 10 s before each query, and the lifetime sums with 1e12s
    assert want[0]["s10"] == sum(0.25 * j for j in range(50, 60, 2))
    assert want[0]["life"] == 15 * 1e12 + sum(0.25 * j for j in range(30, 60, 2))
    _as_format_2(path)
    got = online(Store.load(path, PLAN), PLAN, spine)
    check(got, {k: [r[k] for r in want] for k in ("s10", "m10", "life")}, rtol=0.0)
    # the loaded store keeps serving pushes, and saves in the current format
    store = Store.load(path, PLAN)
    store.push("ev", [dict(id=1, ts=T + 70 * S, a=0.5)])
    store.save(tmp_path / "again")
    assert json.loads((tmp_path / "again" / "manifest.json").read_text())["format"] == 3
    check(online(store, PLAN, [dict(id=1, ts=T + 71 * S)]), {"s10": [0.5]})


def test_an_unknown_format_is_refused_with_what_to_do(tmp_path):
    path = _saved(tmp_path)
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["format"] = 1
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match=r"unknown store format 1 .*astra materialize"):
        Store.load(path, PLAN)
