"""`astra materialize --state` on a serving state directory (docs/operations.md, "What is never
deleted"): what it writes is what `astra serve --state` reads; acknowledged pushes still in the
log are carried over into the new store; pushes it cannot carry over are only dropped with
`--discard-pushes`, otherwise it refuses with one line and leaves the directory as it was."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from serve_harness import FEATURES, ROOT

USER = 10**9 + 7
NEW_GROUP = """import "common/"

features big_spend v1 for user {
    big_1d: int64 = count(transactions where amount > 5000.0, 1d)
}

service big_model v1 {
    big_spend@v1.*
    user_spend@v1.tx_count_1h
}
"""


def astra(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "astra.cli.main", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def _project(tmp_path, name="features"):
    proj = tmp_path / name
    shutil.copytree(FEATURES, proj, ignore=shutil.ignore_patterns("build", "astra.lock"))
    return proj


def _files(state):
    return sorted((str(p.relative_to(state)), p.stat().st_size) for p in state.rglob("*")
                  if p.is_file() and p.name != "LOCK")


def _push(server, n=3):
    """Push n rows of a new user after the data's end; returns the time to query at."""
    c = server.client
    wm = c.get("/readyz")[2]["watermark"]["transactions"]
    rows = [{"user_id": USER, "merchant_id": 3, "amount": 6000.0 + j, "category": "cat_01",
             "ts": wm + 1_000_000 * (j + 1)} for j in range(n)]
    status, _, ack = c.post("/v1/push", {"source": "transactions", "rows": rows})
    assert status == 200 and ack["accepted"] == n, ack
    return wm + 60_000_000


def _count(server, at, user=USER):
    status, _, got = server.client.post("/v1/features", {"service": "fraud_model", "version": 1, "at": at,
                                                         "entities": [{"user_id": user}],
                                                         "features": ["tx_count_1h"]})
    assert status == 200, got
    return got["results"][0]["values"][0]


def test_serve_reads_what_materialize_wrote(tmp_path, demo, servers):
    state = tmp_path / "state"
    r = astra("materialize", FEATURES, "--data-root", demo, "--state", state)
    assert r.returncode == 0, r.stderr
    s = servers(FEATURES, state)  # no --data-root: everything comes from the state directory
    wm = s.client.get("/readyz")[2]["watermark"]
    assert wm.get("transactions") and wm.get("profiles"), wm
    assert "snapshot 1" in s.stderr(), s.stderr()


def test_logged_pushes_are_carried_over(tmp_path, demo, servers):
    """Pushes still in the log (a crash, or no snapshot since) are replayed into the new store,
    also when the project changed; the next `serve` of the new project has them."""
    state = tmp_path / "state"
    s = servers(FEATURES, state, "--data-root", str(demo))
    at = _push(s)
    s.kill9()
    new = _project(tmp_path)
    (new / "big.feat").write_text(NEW_GROUP)
    r = astra("materialize", new, "--data-root", demo, "--state", state)
    assert r.returncode == 0, r.stderr
    assert "carried over 3 pushed row(s) of `transactions`" in r.stdout, r.stdout
    s = servers(new, state)
    assert _count(s, at) == 3
    status, _, got = s.client.post("/v1/features", {"service": "big_model", "version": 1, "at": at,
                                                    "entities": [{"user_id": USER}]})
    assert status == 200 and got["results"][0]["values"] == [3, 3], got


def test_pushes_in_the_snapshot_are_carried_over_when_the_state_kept_them(tmp_path, demo, servers):
    """After a clean stop the pushes are folded into the snapshot; the server keeps their log
    records beside it (`STATE/pushed`), and materialize replays those too."""
    state = tmp_path / "state"
    s = servers(FEATURES, state, "--data-root", str(demo))
    at = _push(s)
    s.stop()
    if not (state / "pushed").is_dir():
        pytest.skip("this server does not keep the pushes a snapshot holds")
    new = _project(tmp_path)
    (new / "big.feat").write_text(NEW_GROUP)
    r = astra("materialize", new, "--data-root", demo, "--state", state)
    assert r.returncode == 0, r.stderr
    assert "carried over 3 pushed row(s) of `transactions`" in r.stdout, r.stdout
    s = servers(new, state)
    assert _count(s, at) == 3


def test_pushes_only_in_the_snapshot_are_never_dropped_silently(tmp_path, demo, servers):
    """Pushes that exist only in the snapshot (a state directory that did not keep their
    records) would be lost by a store built from the files: materialize refuses (one line naming
    --discard-pushes, exit 1, nothing touched) and the old project still serves them; with the
    flag they are dropped, and said so."""
    state = tmp_path / "state"
    s = servers(FEATURES, state, "--data-root", str(demo))
    at = _push(s)
    s.stop()
    shutil.rmtree(state / "pushed", ignore_errors=True)  # as a state directory from before they were kept
    new = _project(tmp_path)
    (new / "big.feat").write_text(NEW_GROUP)
    before = _files(state)
    r = astra("materialize", new, "--data-root", demo, "--state", state)
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert r.returncode == 1 and len(errors) == 1, r.stderr
    assert "--discard-pushes" in errors[0] and "3 acknowledged row(s) pushed to `transactions`" in errors[0], errors
    assert "Traceback" not in r.stderr
    assert _files(state) == before
    s = servers(FEATURES, state)
    assert _count(s, at) == 3
    s.stop()
    r = astra("materialize", new, "--data-root", demo, "--state", state, "--discard-pushes")
    assert r.returncode == 0, r.stderr
    assert "discarded 3 pushed row(s) of `transactions`" in r.stdout, r.stdout
    s = servers(new, state)
    assert _count(s, at) == 0
    assert s.client.get("/readyz")[2]["watermark"]["transactions"] < at


def test_a_running_server_or_a_foreign_directory_is_refused(tmp_path, demo, servers):
    state = tmp_path / "state"
    s = servers(FEATURES, state, "--data-root", str(demo))
    r = astra("materialize", FEATURES, "--data-root", demo, "--state", state)
    assert r.returncode == 1 and "in use by another `astra serve`" in r.stderr, r.stderr
    s.stop()
    other = tmp_path / "docs"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    r = astra("materialize", FEATURES, "--data-root", demo, "--state", other)
    assert r.returncode == 1 and "not a state directory" in r.stderr, r.stderr
    assert (other / "notes.txt").read_text() == "keep me" and len(list(other.iterdir())) == 1


def test_materialize_and_serve_default_to_the_same_state_directory():
    """`astra materialize` then `astra serve`, both without --state, serve what was materialized
    (and materialize never takes build/online, where `astra compile --online` writes plans)."""
    from astra.cli.materialize import materialize
    from astra.cli.serve import serve

    def default(cmd):
        return str(next(p for p in cmd.params if p.name == "state").default)

    assert default(materialize) == default(serve) == "build/serve"


def test_a_store_saved_directly_is_replaced_only_when_it_holds_nothing_beyond_the_files(tmp_path, demo):
    """What `astra materialize` wrote before it wrote state directories (a bare `Store.save`):
    rebuilt into a state directory when the files hold all its rows; refused when it holds more
    (pushed from Python), unless --discard-pushes."""
    from astra.online import Store
    from astra.project import Project

    plan = Project.load(FEATURES).plan
    bare = Store(plan)
    bare.materialize(demo)
    state = tmp_path / "state"
    bare.save(state)
    r = astra("materialize", FEATURES, "--data-root", demo, "--state", state)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in state.iterdir() if p.name != "LOCK") == ["snap-000000000001"]
    Store.load(state / "snap-000000000001", plan)

    pushed = Store(plan)
    pushed.materialize(demo)
    t = pushed.watermark["transactions"] + 1_000_000
    pushed.push("transactions", [{"user_id": USER, "merchant_id": 3, "amount": 1.0, "category": "cat_01", "ts": t}])
    other = tmp_path / "other"
    pushed.save(other)
    before = _files(other)
    r = astra("materialize", FEATURES, "--data-root", demo, "--state", other)
    assert r.returncode == 1 and "1 acknowledged row(s) pushed to `transactions`" in r.stderr, r.stderr
    assert _files(other) == before


def test_a_damaged_log_is_refused_with_one_line(tmp_path, demo):
    """A sealed log segment damaged in its middle: acknowledged rows after the damage cannot be
    read, so materialize refuses (the server would too) instead of replacing the directory."""
    from astra.serve.wal import encode

    state = tmp_path / "state"
    (state / "wal").mkdir(parents=True)
    row = {"user_id": USER, "merchant_id": 3, "amount": 1.0, "category": "cat_01", "ts": "2026-03-02T00:00:00"}
    (state / "wal" / "000000000001.log").write_bytes(encode("transactions", [row]) + b"\x07garbage"
                                                     + encode("transactions", [row]))
    (state / "wal" / "000000000002.log").write_bytes(encode("transactions", [row]))
    before = _files(state)
    r = astra("materialize", FEATURES, "--data-root", demo, "--state", state)
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert r.returncode == 1 and len(errors) == 1 and "damaged" in errors[0], r.stderr
    assert "Traceback" not in r.stderr and _files(state) == before
