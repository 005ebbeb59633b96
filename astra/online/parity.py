"""Online/offline parity as a product feature: replay the offline data through a fresh store in
time order, query it at every spine row's time, and compare with `astra.offline.backfill`.

Events are pushed in (time, file position) order, in batches; each spine row is then queried at its
own time, with events at and after that time already in the store, so the store's own visibility
rule is what hides them.
Ints, strings, bools and nulls must match exactly; floats to 1e-9 relative.
"""

from __future__ import annotations

import math
from pathlib import Path

import attrs
import numpy as np
import polars as pl

from astra.online import ingest
from astra.online.store import Store
from astra.ops.registry import Vec
from astra.plan import ir


@attrs.define
class FeatureParity:
    name: str
    rows: int = 0
    mismatches: int = 0
    max_abs: float = 0.0
    max_rel: float = 0.0
    example: str = ""


@attrs.define
class ParityReport:
    service: str
    features: list[FeatureParity]

    @property
    def ok(self) -> bool:
        return all(f.mismatches == 0 for f in self.features)

    def table(self) -> str:
        """The report as an aligned text table."""
        head = f"{'feature':<28} {'rows':>8} {'mismatch':>8} {'max abs err':>12} {'max rel err':>12}"
        lines = [f"parity {self.service}", head, "-" * len(head)]
        for f in self.features:
            lines.append(f"{f.name:<28} {f.rows:>8} {f.mismatches:>8} {f.max_abs:>12.3g} {f.max_rel:>12.3g}"
                         + (f"  e.g. {f.example}" if f.example else ""))
        lines.append("OK" if self.ok else "MISMATCH")
        return "\n".join(lines)


def _compare(fp: FeatureParity, got: list, want: list, rtol: float = 1e-9) -> None:
    for j, (a, b) in enumerate(zip(got, want)):
        fp.rows += 1
        bad = False
        if a is None or b is None:
            bad = (a is None) != (b is None)
        elif isinstance(a, float) or isinstance(b, float):
            if math.isnan(a) or math.isnan(b):
                bad = not (math.isnan(a) and math.isnan(b))
            else:
                err = abs(a - b)
                rel = err / max(abs(a), abs(b)) if err else 0.0
                fp.max_abs, fp.max_rel = max(fp.max_abs, err), max(fp.max_rel, rel)
                bad = rel > rtol
        else:
            bad = (tuple(a) if isinstance(a, list) else a) != (tuple(b) if isinstance(b, list) else b)
        if bad:
            fp.mismatches += 1
            if not fp.example:
                fp.example = f"row {j}: online {a!r} vs offline {b!r}"


def _epoch_us(df: pl.DataFrame) -> pl.DataFrame:
    return df.with_columns(pl.col(c).dt.epoch("us") for c, d in df.schema.items() if isinstance(d, pl.Datetime))


CHUNK_ROWS = 4096  # spine rows answered per store query


def run_parity(plan: ir.Plan, service: str, version: int, spine: pl.DataFrame, data_root: str | Path,
               time_column: str = "ts", allowed_lateness: int = 0) -> ParityReport:
    """Replay sources and spine through a fresh Store; compare every output with the offline engine.

    The spine is answered in time order, in chunks of up to `CHUNK_ROWS` rows spanning at most
    `span` of time.  Before a chunk, every event up to and including the chunk's last query time
    is pushed (in time order, ties in file order); each row is then queried at its own time, so
    the store must hide rows at or after that time itself.  The store's allowed lateness covers the
    span, so its horizon never passes the chunk's first query.
    """
    from astra.offline import backfill, io

    svc = plan.service(service, version)
    offline = _epoch_us(backfill(plan, service, version, spine, data_root, time_column))
    longest = max((n.window or 0 for f in plan.features for n in ir.walk(f.expr) if isinstance(n, ir.Aggregate)),
                  default=0)
    span = max(longest // 8, 3_600_000_000)
    store = Store(plan, max(allowed_lateness, span), services=[svc.id])
    feeds = []
    for src in plan.sources:
        if not any(s.source.name == src.name for s in store.specs):
            continue
        df = io.read_table(io.source_path(src, data_root)).select([c for c, _ in src.columns])
        times, cols = ingest.from_frame(src, df, drop_null_keys=True)
        order = np.argsort(times, kind="stable")  # file order within equal times
        feeds.append([src, times[order], {c: Vec(v.values[order], v.valid[order]) for c, v in cols.items()}, 0])
    q_times = io.spine_times(spine, time_column)
    key_names = list(dict.fromkeys(k for e in svc.entities for k, _ in plan.entity(e).keys))
    spine_rows = spine.select(key_names).to_dicts()
    req_fields = {n.field for f in plan.closure(tuple(o.feature for o in svc.outputs)) for n in ir.walk(f.expr)
                  if isinstance(n, ir.RequestInput)}
    req_rows = _epoch_us(spine.select(sorted(req_fields))).to_dicts() if req_fields else None
    outputs = {o.name: [None] * len(spine) for o in svc.outputs}
    order = np.argsort(q_times, kind="stable")
    sorted_times = q_times[order]
    i = 0
    while i < len(order):
        j = min(i + CHUNK_ROWS, int(np.searchsorted(sorted_times, sorted_times[i] + span, "right")))
        last = int(sorted_times[j - 1])
        for feed in feeds:
            src, times, cols, done = feed
            upto = int(np.searchsorted(times, last, "right"))
            if upto > done:
                store._ingest(src, times[done:upto], {c: Vec(v.values[done:upto], v.valid[done:upto])
                                                     for c, v in cols.items()}, bulk=done == 0)
                feed[3] = upto
        ids = order[i:j].tolist()
        res = store.get(svc.id, [spine_rows[k] for k in ids], at=q_times[order[i:j]],
                        request=[req_rows[k] for k in ids] if req_rows else None)
        for r, k in zip(res.rows(), ids):
            for name in outputs:
                outputs[name][k] = r[name]
        i = j
    report = ParityReport(svc.id, [])
    for o in svc.outputs:
        fp = FeatureParity(o.name)
        _compare(fp, outputs[o.name], offline[o.name].to_list())
        report.features.append(fp)
    return report
