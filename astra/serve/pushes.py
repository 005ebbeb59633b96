"""How pushed rows reach the store: `/v1/push` (validated, logged, stored, the cache invalidated),
on the event loop or in the writer thread (`astra.serve.writer`), and the bookkeeping after the
store changed what queries see.  Mixed into `astra.serve.engine.Engine` (uses its store, log,
cache and metrics)."""

from __future__ import annotations

import sys
import time

from astra.online.redis_store import StoreUnavailable
from astra.online.store import iso
from astra.plan import ir
from astra.serve.validate import ApiError, push_body, push_rows


class _LogFailed(Exception):
    """The push log could not be written (the message is the OS's reason); nothing was stored."""


class PushPath:
    """The push path of `Engine`."""

    def push(self, doc: object) -> dict:
        """Validate, log (durably), store and invalidate; the body of the acknowledgement.  Run on
        the event loop (or without one); `push_async` runs it in the writer thread."""
        return self._push(doc, paused=False)

    async def push_async(self, doc: object) -> dict:
        """`push` in the writer thread (`astra.serve.writer`): the loop answers reads meanwhile,
        except while the push's changes go into the store."""
        if self.writer is None:
            return self.push(doc)
        return await self.writer.run(self._push, doc, True)

    def _push(self, doc: object, paused: bool) -> dict:
        """`paused`: the store's lock is the writer's `LoopPause`, which calls `_published` while
        the loop is parked; else it is called here, after the store took the rows."""
        self._check_ok()
        src, raw = push_body(doc, self.sources, self.config.max_push_rows)
        if self.log is None:
            raise ApiError(403, "read_only", "this server is read-only (--read-only): push to the writing server")
        rows, errors, n_bad = push_rows(src, raw)
        if n_bad:
            self.metrics.rejected.labels(src.name, "schema").inc(n_bad)
            raise ApiError(422, "invalid_rows", f"{n_bad} of {len(raw)} rows do not match source `{src.name}`; "
                           f"nothing was stored", "rows", rejected=n_bad, errors=errors)
        if not rows:
            return self._ack(src, [], [])
        logged: list = []

        def admitted(report) -> None:  # the rows to store are known: log them before any goes in
            left_out = {j for j, _, _ in report.rejected} | {j for j, _, _ in report.future}
            accepted = [r for j, r in enumerate(rows) if j not in left_out] if left_out else rows
            if accepted:
                t0 = time.perf_counter()
                try:
                    self.log.append(src.name, accepted)
                except OSError as exc:
                    raise _LogFailed(exc.strerror) from None
                self.metrics.wal_sync.observe(time.perf_counter() - t0)
            logged.append(accepted)
            self._dirty = (src.name, accepted)

        try:
            report = self.store.push(src.name, rows, on_late="report", admitted=admitted)
            if not paused:
                self._published()
        except _LogFailed as exc:  # nothing went into the store: the client may retry
            raise ApiError(503, "log_failed", f"writing the push log failed ({exc}); nothing was stored") from None
        except StoreUnavailable as exc:  # nothing is held here: the client may retry
            raise ApiError(503, "store_unavailable", str(exc)) from None
        except Exception as exc:  # the store may be half-updated; the log has the push, a restart replays it
            self.failed = (f"a push to `{src.name}` failed inside the store ({type(exc).__name__}); the "
                           f"server stopped answering so no half-stored push is served: restart it")
            print(f"astra serve: {self.failed}: {exc!r}", file=sys.stderr)
            raise ApiError(503, "store_failed", self.failed) from None
        finally:
            self._dirty = None
        accepted = logged[0] if logged else []
        rejected = self._rejections(src, report)
        if accepted:
            self.metrics.pushed.labels(src.name).inc(len(accepted))
            if self.log.bytes >= self.config.snapshot_bytes:
                self.snapshot()
        return self._ack(src, accepted, rejected)

    def _ack(self, src: ir.Source, accepted: list, rejected: list) -> dict:
        return {"source": src.name, "accepted": len(accepted), "rejected": rejected,
                "watermark": self.store.watermark.get(src.name), "durable": self.config.fsync == "always"}

    def _rejections(self, src: ir.Source, report) -> list[dict]:
        """The rows a push left out, as the acknowledgement lists them (and counted)."""
        if not (report.rejected or report.future):
            return []
        at = f"{src.time}"
        if report.rejected:
            self.metrics.rejected.labels(src.name, "late").inc(len(report.rejected))
        if report.future:
            self.metrics.rejected.labels(src.name, "future").inc(len(report.future))
        return sorted([
            *({"index": j, "reason": "late", "location": f"rows[{j}].{at}", "time": t, "bound": b,
               "message": f"rows[{j}].{at}: event time {iso(t)} is before the watermark minus the allowed "
                          f"lateness ({iso(b)})"} for j, t, b in report.rejected),
            *({"index": j, "reason": "future", "location": f"rows[{j}].{at}", "time": t, "bound": b,
               "message": f"rows[{j}].{at}: event time {iso(t)} is later than the server's clock plus "
                          f"--max-future ({iso(b)}); a row from the future would move the watermark past "
                          f"now and evict rows that queries for now need"} for j, t, b in report.future),
        ], key=lambda r: r["index"])

    def _published(self) -> None:
        """After the store changed what queries see (rows of a push went in, a rebuilt table was
        swapped in): drop the cached answers of the pushed entity keys, follow the horizon, and
        count the change, so a request that read the cache before it is evaluated whole
        (`refresh`).  Runs while no query does (on the loop, or with the loop parked)."""
        if self._dirty is not None:
            self._invalidate(*self._dirty)
        self._track_horizon()
        self.pushes += 1

    def _track_horizon(self) -> None:
        """After rows reached the store: when eviction moved the horizon, drop the cache (evicted
        rows are folded into lifetime state, which may round a float sum differently in its last
        bit, and cached answers must equal the store's)."""
        if self.store.horizon != self.horizon:
            self.horizon = self.store.horizon
            self.cache.clear()

    def _invalidate(self, source: str, rows: list[dict]) -> None:
        cache = self.cache
        if not cache.entries:
            return
        for entity, cols in self.affects[source]:
            seen = {tuple(r[c] for c in cols) for r in rows}
            for key in seen:
                cache.invalidate(entity, key)
