"""What `astra materialize` does to a state directory: tell a state directory from other
content, read the acknowledged pushes it holds beyond its source files, and install a new
store as its newest snapshot (the log and its kept pushes, docs/operations.md)."""

from __future__ import annotations

import re
import shutil

import orjson

from astra.serve.wal import StateDir, pushed_records, read_pushed, read_segment, save_snapshot

_STATE_ENTRY = re.compile(r"^(LOCK|wal|pushed|\.?snap-\d{12}(\..*)?|\.?pre-migration-\d{12})$")


def foreign_entries(state: StateDir) -> list[str]:
    """Entries of the directory that a state directory does not hold (a store saved by
    `Store.save` directly, with its manifest at the top, counts as one)."""
    if not state.root.is_dir():
        return []
    legacy = set(legacy_files(state))
    return sorted(p.name for p in state.root.iterdir() if not _STATE_ENTRY.match(p.name) and p.name not in legacy)


def legacy_files(state: StateDir) -> list[str]:
    """The files of a store saved straight into the directory (what `astra materialize` wrote
    before it wrote state directories), or []."""
    try:
        manifest = orjson.loads((state.root / "manifest.json").read_bytes())
        names = [f for t in manifest["tables"] for f in t["arrays"].values()] + manifest.get("index_files", [])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return []
    return ["manifest.json", *(n for n in names if isinstance(n, str) and "/" not in n)]


def held_pushes(state: StateDir) -> tuple[int | None, dict[str, int] | None, dict[str, int], list[dict], list[dict]]:
    """What the directory holds beyond its source files: (the newest snapshot or None, the rows
    per source pushed into it (None: it does not say), the rows per source it holds in all
    (`next_seq`), the kept records of the pushes it holds (`STATE/pushed`, when the server kept
    them), the log records after it), records in push order.  A torn last record is left out (it
    was never acknowledged); a damaged sealed segment is a `WalError`."""
    from astra.online import persist

    snaps = state.snapshots() if state.root.is_dir() else []
    base = snaps[-1] if snaps else None
    if base is not None:
        manifest, pushed = persist.read_manifest(state.snapshot(base)), read_pushed(state, base)
    elif legacy_files(state):
        manifest, pushed = persist.read_manifest(state.root), None
    else:
        manifest, pushed = {"next_seq": {}}, {}
    kept = list(pushed_records(state)) if base is not None else []
    segs = [n for n in state.segments() if base is None or n >= base]
    logged: list[dict] = []
    for i, n in enumerate(segs):
        recs, _ = read_segment(state.segment(n), last=i == len(segs) - 1, repair=False)
        logged.extend(recs)
    return base, pushed, dict(manifest.get("next_seq", {})), kept, logged


def install(state: StateDir, store, pushed: dict[str, int], discard: bool = False) -> int:
    """Make `store` the directory's newest snapshot (`pushed`: its rows that came from pushes),
    replacing the snapshots, log segments and directly saved store before it; returns its number.
    The caller has made sure the store holds every acknowledged push, or was told to `discard`
    them: then no copy of them is kept either (they must not come back in a later rebuild)."""
    state.root.mkdir(parents=True, exist_ok=True)
    legacy = legacy_files(state)
    n = max([0, *state.snapshots(), *state.segments()]) + 1
    state.pushed_at[n] = dict(pushed)
    save_snapshot(store, state, n)
    if discard:
        for seg in state.segments():
            if seg < n:
                state.segment(seg).unlink(missing_ok=True)
        shutil.rmtree(state.pushed_dir, ignore_errors=True)
    for name in legacy:
        state.inside(state.root / name).unlink(missing_ok=True)
    return n
