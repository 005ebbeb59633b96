"""Durability: an append-only push log in segments, periodic store snapshots, and recovery.

State directory layout (nothing is ever written outside it):

    STATE/LOCK                 lockf: one writing server at a time (read-only ones take no lock)
    STATE/snap-000000000007/   `Store.save` output: the effect of every segment numbered < 7
    STATE/wal/000000000007.log the log after that snapshot; the highest segment is the active one

A record is `length (u32 LE) | crc32 (u32 LE) | payload`, the payload the JSON of
`{"source": ..., "rows": [...]}` holding exactly the rows the store accepted, in push order.
JSON has no NaN or infinities (orjson writes them as null), so a record with such floats also
carries `"nonfinite": [[row, column, "NaN" | "Infinity" | "-Infinity"], ...]`, which `decode`
puts back in place of those nulls.
A push is acknowledged only after its record is written (and, with fsync "always", on disk).
A crash mid-write leaves a torn last record (short, or a checksum mismatch); it was never
acknowledged, so recovery drops it and truncates the log there.  A bad record anywhere else
means the log is damaged and recovery stops with an error instead of guessing.

Snapshot: seal the active segment N-1, start segment N, `Store.save` to `snap-N` (atomic
rename), then delete older snapshots and segments.  A running server writes it from a forked
child (`BackgroundSnapshot`), so requests and pushes go on meanwhile.  Recovery: load the newest `snap-N`, replay
segments >= N in order.  Replaying the same accepted rows in the same batches onto the same
snapshot rebuilds the same store, so every answer after a restart equals the answer before.

Read-only servers recover the same way and then follow the log (`Follower`) while a writer
appends to it: only complete, checksummed records are applied, a segment is left only once a
later one exists (the writer seals a segment before creating the next), and a follower whose
next segment was already deleted by a snapshot reloads from the newest snapshot (`Behind`).
"""

from __future__ import annotations

import fcntl
import math
import os
import re
import shutil
import struct
import sys
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import orjson

_HEADER = struct.Struct("<II")
_SNAP = re.compile(r"^snap-(\d{12})$")
_SEG = re.compile(r"^(\d{12})\.log$")
FSYNC_POLICIES = ("always", "interval", "never")


class WalError(Exception):
    """The state directory cannot be used as it is; the message says why and what to do."""


def encode(source: str, rows: list[dict]) -> bytes:
    """One log record: header and payload in a single buffer (written with one `write`)."""
    payload = orjson.dumps({"source": source, "rows": rows})
    if b"null" in payload:  # a null, or a non-finite float orjson wrote as one: look (rarely needed)
        marks = [[j, c, "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")]
                 for j, row in enumerate(rows) for c, v in row.items()
                 if isinstance(v, float) and not math.isfinite(v)]
        if marks:
            payload = orjson.dumps({"source": source, "rows": rows, "nonfinite": marks})
    return _HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def decode(payload: bytes) -> dict:
    """A record's `{"source", "rows"}`, its non-finite floats back in place."""
    rec = orjson.loads(payload)
    marks = rec.pop("nonfinite", None)
    if marks:
        rows = rec["rows"]
        for j, c, text in marks:
            rows[j][c] = float(text)  # "NaN", "Infinity", "-Infinity" are what float() reads
    return rec


def scan(data: bytes) -> tuple[list[bytes], int]:
    """The intact records at the start of `data` and the offset where they end (a torn or corrupt
    record, or the end of the data)."""
    out, off, n = [], 0, len(data)
    while off + _HEADER.size <= n:
        length, crc = _HEADER.unpack_from(data, off)
        end = off + _HEADER.size + length
        if end > n:
            break
        payload = data[off + _HEADER.size:end]
        if zlib.crc32(payload) != crc:
            break
        out.append(payload)
        off = end
    return out, off


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class StateDir:
    """Paths inside one state directory, resolved once; every path this module writes comes from here."""

    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()
        self.wal = self.root / "wal"
        # per sealed segment n: the pushed rows per source whose effect snapshot n holds (see `Log.pushed`)
        self.pushed_at: dict[int, dict[str, int]] = {}
        self.pushed_dir = self.root / "pushed"  # segments a snapshot holds, kept: every acknowledged push

    def inside(self, p: Path) -> Path:
        p = p.resolve()
        if self.root not in p.parents and p != self.root:  # defence in depth: names are generated here
            raise WalError(f"refusing to write {p}: outside the state directory {self.root}")
        return p

    def snapshot(self, n: int) -> Path:
        return self.inside(self.root / f"snap-{n:012d}")

    def segment(self, n: int) -> Path:
        return self.inside(self.wal / f"{n:012d}.log")

    def snapshots(self) -> list[int]:
        return sorted(int(m.group(1)) for p in self.root.iterdir() if (m := _SNAP.match(p.name))
                      and (p / "manifest.json").exists())

    def segments(self) -> list[int]:
        if not self.wal.exists():
            return []
        return sorted(int(m.group(1)) for p in self.wal.iterdir() if (m := _SEG.match(p.name)))

    def pushed_segment(self, n: int) -> Path:
        return self.inside(self.pushed_dir / f"{n:012d}.log")

    def pushed_segments(self) -> list[int]:
        if not self.pushed_dir.exists():
            return []
        return sorted(int(m.group(1)) for p in self.pushed_dir.iterdir() if (m := _SEG.match(p.name)))

    def lock(self, exclusive: bool) -> int:
        """Take the directory lock (kept until the process exits); a clear error if another server holds it.

        A POSIX record lock (`lockf`), not `flock`: it belongs to this process alone, so a forked
        snapshot child never holds it.  With `flock` the child shared it until it closed its copy of
        the descriptor, and a worker killed just after the fork left it held, refusing the respawned
        worker (and ending the server).  Nothing else in a process opens LOCK (closing any descriptor
        of the file would drop a POSIX lock)."""
        fd = os.open(self.inside(self.root / "LOCK"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.lockf(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except (BlockingIOError, PermissionError):
            os.close(fd)
            raise WalError(f"{self.root} is in use by another `astra serve` (it holds {self.root / 'LOCK'}); "
                           f"stop it or give this server its own --state") from None
        return fd


class Log:
    """The active segment, open for appending; `fsync` is "always", "interval" (every `interval` s) or "never"."""

    def __init__(self, state: StateDir, segment: int, fsync: str = "always", interval: float = 0.05,
                 pushed: dict[str, int] | None = None):
        if fsync not in FSYNC_POLICIES:
            raise ValueError(f"fsync must be one of {FSYNC_POLICIES}, got {fsync!r}")
        self.state, self.fsync, self.interval = state, fsync, interval
        # rows acknowledged per source since the store was bootstrapped (None: unknown, a state
        # directory from before this was counted); each snapshot records it, so a later
        # `astra materialize` knows how many pushed rows exist only in the snapshot
        self.pushed = pushed
        self.fd = -1
        self.segment = segment
        self.bytes = 0  # since the last snapshot
        self.records = 0
        self.dirty = False
        self.last_sync = time.monotonic()
        self._open(segment)

    def _open(self, n: int) -> None:
        self.state.wal.mkdir(parents=True, exist_ok=True)
        path = self.state.segment(n)
        created = not path.exists()
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.segment = n
        if created:
            _fsync_dir(self.state.wal)

    def append(self, source: str, rows: list[dict]) -> int:
        """Write one record; returns its size.  With fsync "always" it is on disk when this returns."""
        rec = encode(source, rows)
        view = memoryview(rec)
        while view:
            k = os.write(self.fd, view)
            view = view[k:]
        self.bytes += len(rec)
        self.records += 1
        if self.pushed is not None:
            self.pushed[source] = self.pushed.get(source, 0) + len(rows)
        if self.fsync == "always":
            os.fdatasync(self.fd)
        elif self.fsync == "interval":
            self.dirty = True
            if time.monotonic() - self.last_sync >= self.interval:
                self.sync()
        return len(rec)

    def sync(self) -> None:
        if self.dirty and self.fd >= 0:
            os.fdatasync(self.fd)
            self.dirty = False
        self.last_sync = time.monotonic()

    def rotate(self) -> int:
        """Seal the active segment and start the next; returns the new segment's number."""
        self.dirty = True
        self.sync()
        os.close(self.fd)
        self._open(self.segment + 1)
        self.bytes = self.records = 0
        if self.pushed is not None:
            self.state.pushed_at[self.segment] = dict(self.pushed)
        return self.segment

    def close(self) -> None:
        if self.fd >= 0:
            self.dirty = True
            self.sync()
            os.close(self.fd)
            self.fd = -1


def read_segment(path: Path, last: bool, repair: bool) -> tuple[Iterator[dict], int]:
    """The records of one segment, and the offset where the intact ones end.  A torn tail is
    dropped (and truncated away if `repair`) in the last segment; anywhere else it is an error."""
    data = path.read_bytes()
    records, end = scan(data)
    if end < len(data):
        if not last:
            raise WalError(f"{path} is damaged at byte {end} of {len(data)}, and it is not the last segment; "
                           f"rows after that point would be lost. Restore the state directory from a backup.")
        if repair:
            with open(path, "r+b") as f:
                f.truncate(end)
                f.flush()
                os.fsync(f.fileno())
    return (decode(payload) for payload in records), end


class NoSnapshot(WalError):
    """A read-only server found no snapshot to start from (its writer may still be bootstrapping)."""


class Behind(Exception):
    """A follower's next segment is gone (a snapshot of the writer deleted it): reload."""


class Follower:
    """The records a writer appends to the log, read from a position (segment, offset) on."""

    def __init__(self, state: StateDir, segment: int, offset: int):
        self.state, self.segment, self.offset = state, segment, offset
        self.fd = self._open(segment)

    def _open(self, n: int) -> int:
        try:
            return os.open(self.state.segment(n), os.O_RDONLY)
        except FileNotFoundError:
            return -1

    def poll(self, max_bytes: int = 64 * 2**20) -> list[dict]:
        """The complete records appended since the last call (about `max_bytes` at most, so a
        follower far behind catches up in steps); raises `Behind` when it cannot go on."""
        out: list[dict] = []
        budget = max_bytes
        while budget > 0:
            if self.fd < 0:
                self.fd = self._open(self.segment)
                if self.fd < 0:  # not created yet, or deleted: later segments tell which
                    if any(s > self.segment for s in self.state.segments()):
                        raise Behind
                    return out
            want = os.fstat(self.fd).st_size - self.offset
            if want > 0:
                data = os.pread(self.fd, min(want, budget), self.offset)
                records, end = scan(data)
                if not end and want > len(data) >= _HEADER.size:  # one record larger than the budget
                    data = os.pread(self.fd, _HEADER.size + _HEADER.unpack_from(data)[0], self.offset)
                    records, end = scan(data)
                out.extend(decode(p) for p in records)
                self.offset += end
                budget -= end
                if end < len(data) or not end:  # an incomplete record (being written, or torn by a crash)
                    return out
                continue
            later = [s for s in self.state.segments() if s > self.segment]
            if not later:
                return out  # the active segment: more may come
            if os.fstat(self.fd).st_size > self.offset:
                continue  # written before the writer sealed it
            if later[0] != self.segment + 1:
                raise Behind
            os.close(self.fd)
            self.segment, self.offset = self.segment + 1, 0
            self.fd = self._open(self.segment)
            if self.fd < 0:
                raise Behind
        return out

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def snapshot(store, state: StateDir, log: Log) -> float:
    """Rotate the log, save the store as `snap-N`, drop older snapshots and segments; returns seconds."""
    t0 = time.perf_counter()
    save_snapshot(store, state, log.rotate())
    return time.perf_counter() - t0


def save_snapshot(store, state: StateDir, n: int) -> None:
    """Save the store as `snap-n` (the effect of every segment < n), durably, then prune."""
    pushed = state.pushed_at.pop(n, None)
    store.save(state.snapshot(n))
    write_pushed(state, n, pushed)
    _fsync_dir(state.root)
    prune(state, n)


PUSHED = "pushed.json"  # in snap-N: {"pushed": {source: rows}} acknowledged by pushes, whose effect it holds


def write_pushed(state: StateDir, n: int, pushed: dict[str, int] | None) -> None:
    """Record beside snapshot n how many of its rows came from pushes (written after the
    snapshot itself: one missing after a crash only makes the count unknown)."""
    if pushed is None:
        return
    path = state.inside(state.snapshot(n) / PUSHED)
    with open(path, "w") as f:
        f.write(orjson.dumps({"pushed": pushed}).decode())
        f.flush()
        os.fsync(f.fileno())


def read_pushed(state: StateDir, n: int) -> dict[str, int] | None:
    """The rows per source that came from pushes in snapshot n, or None when it does not say."""
    try:
        pushed = orjson.loads((state.snapshot(n) / PUSHED).read_bytes())["pushed"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(pushed, dict) or not all(isinstance(v, int) for v in pushed.values()):
        return None
    return pushed


def prune(state: StateDir, n: int) -> None:
    """Drop what snapshot `n` (complete, on disk) makes redundant: older snapshots are deleted, older
    segments move to `STATE/pushed`.  They are the only copy of the pushes the snapshot holds, and a
    plan change that adds or changes a table rebuilds it from the source files and every acknowledged
    push (`pushed_records`), so they are kept (a rename: no copy, and followers see them gone)."""
    for old in state.snapshots():
        if old < n:
            shutil.rmtree(state.snapshot(old), ignore_errors=True)
    old_segments = [seg for seg in state.segments() if seg < n]
    if old_segments:
        state.pushed_dir.mkdir(exist_ok=True)
        for seg in old_segments:
            os.replace(state.segment(seg), state.pushed_segment(seg))
        _fsync_dir(state.pushed_dir)
        _fsync_dir(state.wal)


def pushed_records(state: StateDir) -> Iterator[dict]:
    """Every record of the segments older than the newest snapshot, in push order: with the log
    after the snapshot, every push acknowledged since the state directory was created (or since
    it started keeping them).  A crash between a snapshot and its prune leaves segments the
    snapshot holds in `wal/`: they count the same (the writer's next start moves them)."""
    snaps = state.snapshots() if state.root.is_dir() else []
    kept = {n: state.pushed_segment(n) for n in state.pushed_segments()}
    if snaps:
        kept.update({n: state.segment(n) for n in state.segments() if n < snaps[-1] and n not in kept})
    for n in sorted(kept):
        records, _ = read_segment(kept[n], last=False, repair=False)
        yield from records


class BackgroundSnapshot:
    """`snapshot` without blocking the server: after the log was rotated to segment `n`, a forked
    child writes `snap-n` from its copy-on-write image of the store (the state at the rotation,
    however the parent changes it meanwhile) and exits.  `poll` tells when it is done; only then
    are older snapshots and segments pruned, so a failed or killed child loses nothing: recovery
    uses the previous snapshot and replays every segment after it.  A child running longer than
    `timeout` seconds is killed (and counts as failed)."""

    def __init__(self, store, state: StateDir, n: int, timeout: float = 600.0):
        self.state, self.n, self.timeout, self.t0 = state, n, timeout, time.perf_counter()
        pushed = state.pushed_at.pop(n, None)
        parent = os.getpid()
        self.pid = os.fork()
        if self.pid == 0:  # the child: write, and leave without running any of the parent's cleanup
            code = 1
            try:
                _die_with_parent()
                if os.getppid() != parent:  # killed before the death signal was armed: a respawned
                    os._exit(1)  # server owns the directory now, and sweeps its temporary snapshots
                # drop the parent's sockets, log and lock descriptors: a connection the server
                # closes must not stay open here (stdin/out/err stay, for messages)
                os.closerange(3, os.sysconf("SC_OPEN_MAX") if hasattr(os, "sysconf") else 4096)
                store.save(state.snapshot(n))
                write_pushed(state, n, pushed)
                _fsync_dir(state.root)
                code = 0
            except BaseException as exc:
                print(f"astra serve: writing snapshot snap-{n} failed: {exc!r}", file=sys.stderr, flush=True)
            finally:
                os._exit(code)

    def poll(self, block: bool = False) -> bool | None:
        """None while the child runs; then True (snapshot written, older state pruned) or False."""
        pid, status = os.waitpid(self.pid, 0 if block else os.WNOHANG)
        if pid == 0:
            if self.seconds < self.timeout:
                return None
            os.kill(self.pid, 9)
            pid, status = os.waitpid(self.pid, 0)
        ok = os.waitstatus_to_exitcode(status) == 0 and self.n in self.state.snapshots()
        if ok:
            prune(self.state, self.n)
        return ok

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.t0


def _die_with_parent() -> None:
    """A snapshot child must not outlive a killed server (it shares the directory's lock)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def restore(state: StateDir, base: int, plan, data_root=None):
    """The store of snapshot `base`, migrated to `plan` when it was saved for another plan
    (`astra.online.persist.plan_migration`); returns (store, the Migration or None)."""
    from astra.offline.errors import BackfillError
    from astra.online import OnlineError, Store, persist

    path = state.snapshot(base)
    try:
        migration = persist.plan_migration(Store, path, plan, data_root, lambda: pushed_records(state))
        store = persist.load(Store, path, plan, migration)
        if migration is not None:
            persist.rebuild(store, migration, data_root, lambda: pushed_records(state))
    except persist.MigrationError as exc:
        raise WalError(f"cannot migrate {path} to this project's plan: {exc}; nothing was changed") from None
    except (ValueError, KeyError, OSError, OnlineError, BackfillError) as exc:
        raise WalError(f"cannot restore {path}: {exc}") from None
    return store, migration


def recover(state: StateDir, plan, new_store, *, read_only: bool, fsync: str = "always",
            interval: float = 0.05, data_root=None) -> tuple[object, Log | None, dict]:
    """Restore the newest snapshot (or `new_store()` when there is none), replay the log after it.

    Returns (store, the open log or None when read-only, stats).  A writer snapshots a fresh
    store at once, so later restarts never depend on how it was bootstrapped.  A snapshot saved
    for another plan is migrated (`restore`); a writer then keeps a copy of the state it migrated
    from (`STATE/pre-migration-N`: that snapshot and its log, hard links) and snapshots the
    migrated store at once."""
    from astra.online import OnlineError

    t0 = time.perf_counter()
    state.root.mkdir(parents=True, exist_ok=True)
    for p in state.root.iterdir():  # leftovers of a save interrupted by a crash (Store.save's temp dirs)
        if not read_only and p.name.startswith(".snap-") and p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
    snaps = state.snapshots()
    stats = {"snapshot": None, "records": 0, "rows": 0, "torn_bytes": 0, "migration": None}
    migration = None
    pushed: dict[str, int] | None = {}  # rows acknowledged by pushes (None: unknown)
    if snaps:
        base = snaps[-1]
        store, migration = restore(state, base, plan, data_root)
        stats["snapshot"], stats["migration"] = base, migration
        pushed = read_pushed(state, base)
        if not read_only:  # finish a prune a crash interrupted (after the snapshot was complete)
            prune(state, base)
    elif read_only:  # only a writer bootstraps: rows it materialized exist in its snapshots alone
        raise NoSnapshot(f"{state.root} has no complete snapshot yet (a writer takes one once it has "
                         f"materialized its store)")
    else:
        base, store = None, new_store()
    segs = state.segments()
    replay = [s for s in segs if base is None or s >= base]
    if base is not None and replay and replay[0] != base:
        # snapshot N is followed by segment N (rotated before it was written); without it, rows
        # would be missing.  A read-only server sees this when the writer pruned N meanwhile.
        raise WalError(f"{state.root}: snapshot {base} has no log segment {base} after it (found "
                       f"{replay[0]}); the state directory changed while it was read, or is damaged")
    stats["position"] = (base if base is not None else 1, 0)  # where a follower goes on from
    for i, seg in enumerate(replay):
        path = state.segment(seg)
        size = path.stat().st_size
        records, end = read_segment(path, last=i == len(replay) - 1, repair=not read_only)
        for rec in records:
            try:
                store.push(rec["source"], rec["rows"], on_late="report")
            except (OnlineError, KeyError, ValueError) as exc:  # only after a plan change
                raise WalError(f"cannot replay {path} into this project's plan (record {stats['records'] + 1}, "
                               f"source `{rec['source']}`): {str(exc).strip(chr(39))}; the log is kept as it is: "
                               f"serve the previous project, or make the change keep its sources' columns"
                               ) from None
            stats["records"] += 1
            stats["rows"] += len(rec["rows"])
            if pushed is not None:
                pushed[rec["source"]] = pushed.get(rec["source"], 0) + len(rec["rows"])
        stats["torn_bytes"] += size - path.stat().st_size if not read_only else 0
        stats["position"] = (seg, end)
    stats["seconds"] = time.perf_counter() - t0
    if read_only:
        return store, None, stats
    active = replay[-1] if replay else (base if base is not None else 1)
    log = Log(state, active, fsync, interval, pushed)
    if migration is not None:
        keep_pre_migration(state, base, replay)
    if base is None or migration is not None:
        snapshot(store, state, log)
    return store, log, stats


def keep_pre_migration(state: StateDir, base: int, segments: list[int]) -> Path:
    """Before a migrated store's first snapshot prunes the state it came from: `STATE/pre-migration-N`,
    a state directory holding snapshot N and the log after it (hard links, no copies), which
    `astra serve` of the previous project can serve again."""
    keep = state.inside(state.root / f"pre-migration-{base:012d}")
    if keep.exists():
        shutil.rmtree(keep)
    tmp = state.inside(state.root / f".pre-migration-{base:012d}")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "wal").mkdir(parents=True)
    shutil.copytree(state.snapshot(base), tmp / f"snap-{base:012d}", copy_function=os.link)
    for seg in segments:
        os.link(state.segment(seg), tmp / "wal" / f"{seg:012d}.log")
    if state.pushed_segments():  # the pushes before snapshot N too: a later plan change there can rebuild
        (tmp / "pushed").mkdir()
        for seg in state.pushed_segments():
            os.link(state.pushed_segment(seg), tmp / "pushed" / f"{seg:012d}.log")
    os.replace(tmp, keep)
    _fsync_dir(state.root)
    return keep
