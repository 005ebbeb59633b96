"""Online/offline parity as a product feature: replay the offline data through a fresh store in
time order, query it at every spine row's time, and compare with `astra.offline.backfill`.

Events are pushed in (time, file position) order, in batches; each spine row is then queried at its
own time, with events at and after that time already in the store, so the store's own visibility
rule is what hides them.
Every value is compared by its declared type (`compare`): ints, strings, bools, timestamps,
durations and nulls exactly, floats to 1e-9 relative, lists element by element.  Both engines'
reads of every source file are compared too (`SourceRows`: rows read, null times, null keys per
entity), so a row one engine drops silently shows up as a number.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import attrs
import numpy as np
import polars as pl

from astra.lang.types import Type
from astra.online.store import Store
from astra.ops.registry import Vec
from astra.plan import ir
from astra.row_counts import SourceRows, counting_rows
from astra.times import value_micros

_F32_EPS = 2.0**-23  # one float32 ulp, relative: the most two roundings of float64 results apart can differ


@attrs.define
class FeatureParity:
    """One output's comparison: rows compared, mismatches, the largest float errors, an example."""

    name: str
    type: str = ""
    rows: int = 0
    mismatches: int = 0
    max_abs: float = 0.0
    max_rel: float = 0.0
    example: str = ""


@attrs.define
class SourceParity:
    """One source file as each engine read it (`SourceRows`): they must agree row for row."""

    offline: SourceRows
    online: SourceRows

    @property
    def ok(self) -> bool:
        return self.offline == self.online


@attrs.define
class ParityReport:
    service: str
    features: list[FeatureParity]
    sources: list[SourceParity] = attrs.field(factory=list)

    @property
    def ok(self) -> bool:
        return all(f.mismatches == 0 for f in self.features) and all(s.ok for s in self.sources)

    def table(self) -> str:
        """The report as aligned text: the rows each engine read and left out, then per feature."""
        lines = [f"parity {self.service}"]
        if self.sources:
            head = f"{'source rows':<40} {'offline':>10} {'online':>10}"
            lines += [head, "-" * len(head)]
            for sp in self.sources:
                for what, off, on in _source_lines(sp):
                    flag = "" if off == on else "  <- differs"
                    lines.append(f"{what:<40} {off:>10} {on:>10}{flag}")
            lines.append("")
        head = f"{'feature':<28} {'rows':>8} {'mismatch':>8} {'max abs err':>12} {'max rel err':>12}"
        lines += [head, "-" * len(head)]
        for f in self.features:
            lines.append(f"{f.name:<28} {f.rows:>8} {f.mismatches:>8} {f.max_abs:>12.3g} {f.max_rel:>12.3g}"
                         + (f"  e.g. {f.example}" if f.example else ""))
        lines.append("OK" if self.ok else "MISMATCH")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """The report as JSON-ready data (`astra parity --format json`)."""
        return {"service": self.service, "ok": self.ok,
                "sources": [{"source": sp.offline.source, "ok": sp.ok, "offline": _rows_dict(sp.offline),
                             "online": _rows_dict(sp.online)} for sp in self.sources],
                "features": [attrs.asdict(f) for f in self.features]}


def _rows_dict(r: SourceRows) -> dict:
    return {"rows": r.rows, "null_time": r.null_time, "null_key": dict(r.null_key), "skipped": r.skipped}


def _source_lines(sp: SourceParity) -> list[tuple[str, int, int]]:
    off, on = sp.offline, sp.online
    name = off.source
    out = [(f"{name}: read", off.rows, on.rows), ("  skipped: null time", off.null_time, on.null_time)]
    for e in dict.fromkeys([*off.null_key, *on.null_key]):
        out.append((f"  invisible to {e}: null key", off.null_key.get(e, 0), on.null_key.get(e, 0)))
    out.append(("  skipped: visible to no entity read", off.skipped, on.skipped))
    return out


def canonical(v: object, t: Type) -> object:
    """A value of declared type `t`, from either engine, in one representation: timestamps and
    durations as int µs, lists and vectors as tuples, numpy scalars as Python ones."""
    if v is None:
        return None
    if t.name in ("list", "vector"):
        return tuple(canonical(x, t.item) for x in v)
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, dt.datetime | dt.timedelta):
        return value_micros(v)
    if t.is_float and isinstance(v, int | float) and not isinstance(v, bool):
        return float(v)
    return v


def compare(t: Type, a: object, b: object, rtol: float = 1e-9) -> tuple[bool, float, float]:
    """Do canonical values `a` (online) and `b` (offline) of type `t` match?  Returns (match,
    abs error, rel error); errors are those of finite floats (0.0 otherwise).

    Floats match within `rtol` relative error (float32 within one float32 ulp, 2**-23
    relative: each engine rounds its float64 result once), NaN matches NaN and an infinity only itself; every other
    type must be equal, with the same Python type (a bool is not the int 1)."""
    if a is None or b is None:
        return (a is None) == (b is None), 0.0, 0.0
    if t.name in ("list", "vector"):
        if not isinstance(a, tuple) or not isinstance(b, tuple) or len(a) != len(b):
            return False, 0.0, 0.0
        worst = (True, 0.0, 0.0)
        for x, y in zip(a, b):
            ok, err, rel = compare(t.item, x, y, rtol)
            worst = (worst[0] and ok, max(worst[1], err), max(worst[2], rel))
        return worst
    if t.is_float:
        if not isinstance(a, float) or not isinstance(b, float):
            return False, 0.0, 0.0
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b), 0.0, 0.0
        if math.isinf(a) or math.isinf(b):
            return a == b, 0.0, 0.0
        err = abs(a - b)
        rel = err / max(abs(a), abs(b)) if err else 0.0
        return rel <= (_F32_EPS if t.name == "float32" else rtol), err, rel
    return type(a) is type(b) and a == b, 0.0, 0.0


def _compare(fp: FeatureParity, t: Type, got: list, want: list, rtol: float = 1e-9) -> None:
    for j, (a, b) in enumerate(zip(got, want)):
        a, b = canonical(a, t), canonical(b, t)
        fp.rows += 1
        ok, err, rel = compare(t, a, b, rtol)
        fp.max_abs, fp.max_rel = max(fp.max_abs, err), max(fp.max_rel, rel)
        if not ok:
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
    from astra import io
    from astra.offline import backfill

    svc = plan.service(service, version)
    with counting_rows() as offline_rows:
        offline = backfill(plan, service, version, spine, data_root, time_column, cross_fitting=False)  # as served
    longest = max((n.window or 0 for f in plan.features for n in ir.walk(f.expr) if isinstance(n, ir.Aggregate)),
                  default=0)
    span = max(longest // 8, 3_600_000_000)
    store = Store(plan, max(allowed_lateness, span), services=[svc.id])
    feeds, online_read = [], {}
    for src in plan.sources:
        if not any(s.source.name == src.name for s in store.specs):
            continue
        times, cols, online_read[src.name] = store.read_source(src, data_root)
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
        _feed(store, feeds, last)
        ids = order[i:j].tolist()
        res = store.get(svc.id, [spine_rows[k] for k in ids], at=q_times[order[i:j]],
                        request=[req_rows[k] for k in ids] if req_rows else None)
        for r, k in zip(res.rows(), ids):
            for name in outputs:
                outputs[name][k] = r[name]
        i = j
    _feed(store, feeds, None)  # the rest, so every row read is accounted for
    report = ParityReport(svc.id, [])
    for src_name, read in online_read.items():
        off = offline_rows.get(src_name, SourceRows(src_name))
        report.sources.append(SourceParity(off, store.source_rows(read)))
    for o in svc.outputs:
        t = plan.feature(o.feature).type
        fp = FeatureParity(o.name, str(t))
        _compare(fp, t, outputs[o.name], offline[o.name].to_list())
        report.features.append(fp)
    return report


def _feed(store: Store, feeds: list, upto_time: int | None) -> None:
    """Push each source's events with time <= `upto_time` (None: all) not pushed yet."""
    for feed in feeds:
        src, times, cols, done = feed
        upto = len(times) if upto_time is None else int(np.searchsorted(times, upto_time, "right"))
        if upto > done:
            store._ingest(src, times[done:upto], {c: Vec(v.values[done:upto], v.valid[done:upto])
                                                 for c, v in cols.items()}, bulk=done == 0)
            feed[3] = upto
