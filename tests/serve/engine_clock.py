"""An in-process serving `Engine` whose wall clock the test sets: time-dependent rules (the
future-row limit, "now" queries, readiness) are exercised on purpose, never by sleeping."""

from __future__ import annotations

import os
import time

import orjson
from serve_harness import FEATURES

SECOND = 10**6
HOUR = 3600 * SECOND
# mid-second, so a 1 s cache bucket starts 0.4 s before it: "now" rounded down is not "now"
T = 1_780_000_000 * SECOND + 400_000


class FrozenClock:
    """`time` as the serving engine sees it, with wall-clock time fixed (and settable)."""

    def __init__(self, now_us: int):
        self.now_us = now_us

    def time_ns(self) -> int:
        return self.now_us * 1000

    def time(self) -> float:
        return self.now_us / 1e6

    def __getattr__(self, name):
        return getattr(time, name)


def engine(tmp_path, monkeypatch, clock: FrozenClock, state: str = "s", project=FEATURES, **config):
    """An `Engine` over `tmp_path/state` whose clock is `clock`; the caller closes it."""
    from astra.project import Project
    from astra.serve import engine as engine_module
    from astra.serve.config import ServeConfig
    from astra.serve.engine import Engine

    monkeypatch.setattr(engine_module, "time", clock)
    cfg = ServeConfig(project=str(project), state=str(tmp_path / state), access_log="off", **config)
    return Engine(Project.load(project).plan, cfg, log=lambda m: None)


def stop(eng, crash: bool = False) -> None:
    """Close an engine (`crash`: without the snapshot at shutdown) and release the state
    directory's lock, which a server keeps until its process exits."""
    if crash:
        eng.log.close()
        eng.log = None
    eng.close()
    os.close(eng._lock_fd)


def tx(user: int, ts: int, amount: float = 1.0) -> dict:
    return {"user_id": user, "merchant_id": 1, "amount": amount, "category": "cat_01", "ts": ts}


def push(eng, *rows: dict, source: str = "transactions") -> dict:
    return eng.push({"source": source, "rows": list(rows)})


def features(eng, users, **query) -> dict:
    """The decoded `/v1/features` answer for fraud_model@v1 (an `ApiError` propagates)."""
    q = {"service": "fraud_model", "version": 1, "entities": [{"user_id": u} for u in users], **query}
    return orjson.loads(eng.features(q)[0])
