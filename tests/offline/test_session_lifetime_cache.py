"""A session window and a lifetime window over the same column, in one group, offline.

Both windows have no width, so the offline engine must tell them apart by the session gap when it
caches per-window counts and sums: sharing them would cut the session's values with the lifetime's
row ranges.  Every cell is compared with the reference interpreter (astra/plan/reference.py)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from helpers import run_engine, same

from astra.compiler import compile_project
from astra.diagnostics import render_all
from astra.lang.types import INT64, TIMESTAMP
from astra.plan import reference

H = 3600 * 1_000_000  # µs in an hour

PROJECT = """
entity user { key uid: int64 }
events ev for user {
    path "ev.parquet"
    time ts
    columns { uid: int64  x: int64? }
}
features g v1 for user {
    firsts: list<int64> = first_k(ev.x, 3, session 1h)
    session_n: int64 = count(ev.x, session 1h)
    session_sum: int64 = sum(ev.x, session 1h)
    n: int64 = count(ev.x)
    total: int64 = sum(ev.x)
    rows: int64 = count(ev)
}
service svc v1 { g@v1.* }
"""


def _events() -> list[dict]:
    """Three users whose latest sessions start after earlier rows (gaps of 2h cut them), with nulls."""
    rows = []
    for uid in (1, 2, 3):
        t = 10 * H * uid
        for k in range(9):
            t += 2 * H if k % 4 == 3 else H // 4 * (1 + k % 2)  # every fourth row opens a new session
            rows.append({"uid": uid, "ts": t, "x": None if (k + uid) % 5 == 0 else k * 10 + uid})
    return rows


def test_session_and_lifetime_windows_of_one_column_match_the_reference():
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "p.feat").write_text(PROJECT)
        result = compile_project(Path(tmp), lock="ignore")
        assert result.ok, render_all(result.diagnostics, result.sources)
        plan = result.plan
        events = _events()
        spine = [{"uid": e["uid"], "ts": e["ts"] + 1} for e in events] + [{"uid": 4, "ts": 50 * H}]
        expected = reference.evaluate(plan, "svc", 1, spine, {"ev": events})
        got = run_engine(plan, "svc", 1, spine, {"ev": events}, Path(tmp), (("uid", INT64), ("ts", TIMESTAMP)))
    names = [o.name for o in plan.service("svc", 1).outputs]
    by_key = {(r["uid"], r["ts"]): r for r in got}
    assert len(by_key) == len(spine)
    # the data really separates the two windows: some session holds fewer rows than the lifetime
    assert any(r["session_n"] < r["n"] for r in expected)
    for want in expected:
        row = by_key[(want["uid"], want["ts"])]
        for name in names:
            assert same(row[name], want[name]), (want["uid"], want["ts"], name, row[name], want[name])
