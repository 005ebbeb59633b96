"""The distributed backfill (`--executor dask`): the same result as the single-node engine, exactly
(columns, dtypes, row order, values, nulls and NaN), whatever the partitioning; partitions that
do not depend on the process; and one-line errors for a missing `distributed`, a scheduler that
does not answer and a worker that dies (docs/backfill.md, "Distributed backfill")."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from astra import Project, demo_data
from astra.cli.backfill import backfill as backfill_cmd
from astra.compiler import compile_project
from astra.lang.types import Type
from astra.offline import BackfillError, backfill, snapshot
from astra.offline import distributed as dist
from astra.offline.distributed import DaskExecutor, partitions_of

distributed = pytest.importorskip("distributed")

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT.parent / "shared" / "bench"
S = 1_000_000
T0 = 1_770_000_000 * S  # 2026-02-02

# Four entities: `user` and `buyer` share the key name user_id (one key group; buyer reads the
# payer column), `shop` has a string key, `user_shop` a composite one; nulls in every key column.
PROJECT = """
entity user { key user_id: int64 }
entity buyer { key user_id: int64 }
entity shop { key shop: string }
entity user_shop { key user_id: int64  key shop: string }
events tx for user, shop, user_shop, buyer(user_id = payer) {
    path "tx.parquet"  time ts
    columns { user_id: int64  shop: string  payer: int64  amount: float64?  kind: int32 }
}
snapshot prof for user {
    path "prof.parquet"  time updated_at
    columns { user_id: int64  level: int32  name: string? }
}
features fu v1 for user {
    n_1h: int64 = count(tx, 1h)
    s_1d: float64 = sum(tx.amount, 1d)
    m_7d: float64? = mean(tx.amount, 7d)
    mx: float64? = max(tx.amount)
    kinds: int64 = count_distinct(tx.kind, 7d)
    last_shop: string? = last(tx.shop)
    recent: list<string> = last_k(tx.shop, 3, 1d)
    lvl: int32? = prof.level
    who: string? = prof.name
    ratio: float64? = s_1d / (m_7d ?? 1.0)
}
features fs v1 for shop { n_1d: int64 = count(tx, 1d)  v_7d: float64? = variance(tx.amount, 7d) }
features fus v1 for user_shop { n: int64 = count(tx)  first_kind: int32? = first(tx.kind, 7d) }
features fb v1 for buyer { paid_1d: float64 = sum(tx.amount, 1d)  since: float64? = hours(now() - last(tx.ts)) }
service mixed v1 { fu@v1.*  fs@v1.*  fus@v1.*  fb@v1.* }
service users v1 { fu@v1.*  fb@v1.* }
"""
SHOPS = [f"s{i:02d}" for i in range(12)]
QUIET = {"dashboard_address": "127.0.0.1:0"}  # the scheduler's HTTP endpoint on a free port, not 8787


def _nulls(rng, values: np.ndarray, share: float) -> pl.Series:
    return pl.Series(values).set(pl.Series(rng.random(values.size) < share), None)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """(plan, data root, event times) of PROJECT over generated sources with null keys, null and
    NaN amounts, and many tied times."""
    root = tmp_path_factory.mktemp("mixed")
    (root / "p.feat").write_text(PROJECT)
    result = compile_project(root, lock="ignore")
    assert result.ok, result.diagnostics
    rng = np.random.default_rng(3)
    n = 4000
    ts = T0 + rng.integers(0, 10 * 86400 // 60, size=n) * 60 * S  # whole minutes: ties
    amount = np.round(rng.lognormal(2.0, 1.5, size=n), 2)
    amount[rng.random(n) < 0.01] = np.nan
    pl.DataFrame({
        "user_id": _nulls(rng, rng.integers(1, 41, size=n), 0.03),
        "shop": _nulls(rng, np.array(SHOPS)[rng.integers(0, len(SHOPS), size=n)], 0.03),
        "payer": _nulls(rng, rng.integers(1, 41, size=n), 0.03),
        "amount": _nulls(rng, amount, 0.02),
        "kind": pl.Series(rng.integers(0, 6, size=n), dtype=pl.Int32),
        "ts": pl.Series(ts).cast(pl.Datetime("us")),
    }).write_parquet(root / "tx.parquet", row_group_size=500)
    m = 300
    pl.DataFrame({
        "user_id": _nulls(rng, rng.integers(1, 41, size=m), 0.03),
        "level": pl.Series(rng.integers(0, 5, size=m), dtype=pl.Int32),
        "name": _nulls(rng, np.array(["a", "b", "c"])[rng.integers(0, 3, size=m)], 0.2),
        "updated_at": pl.Series(T0 + rng.integers(0, 10 * 86400, size=m) * S).cast(pl.Datetime("us")),
    }).write_parquet(root / "prof.parquet")
    return result.plan, root, ts


@pytest.fixture(scope="module")
def cluster():
    """Two in-process workers (one thread each) on loopback TCP, shared by the module's tests."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, protocol="tcp",
                                  host="127.0.0.1", dashboard_address=None, scheduler_kwargs=QUIET) as c, \
            distributed.Client(c, set_as_default=False) as client:
        yield c, client


def on(cluster, partitions: int | None = None) -> DaskExecutor:
    return DaskExecutor(address=cluster[0].scheduler_address, partitions=partitions)


def assert_same(single: pl.DataFrame, spread: pl.DataFrame) -> None:
    assert spread.schema == single.schema
    differ = [c for c in single.columns if not spread[c].equals(single[c], check_dtypes=True, null_equal=True)]
    assert not differ, {c: [(i, a, b) for i, (a, b) in enumerate(zip(single[c].to_list(), spread[c].to_list()))
                            if a != b and a == a][:5] for c in differ}
    assert spread.equals(single, null_equal=True)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    d = tmp_path_factory.mktemp("demo")
    demo_data.generate(d, events=3000, users=80, labels=300, seed=5)
    return d


@pytest.fixture(scope="module")
def project():
    return Project.load(ROOT / "features")


@pytest.mark.parametrize("service", ["fraud_model@v1", "fraud_model@v2", "profile_lookup@v1"])
def test_demo_services_equal_single_node(project, demo, cluster, service):
    spine = pl.read_parquet(demo / "spine.parquet")
    want = project.backfill(spine, service=service, data_root=demo)
    assert_same(want, project.backfill(spine, service=service, data_root=demo, executor=cluster[1]))
    assert_same(want, project.backfill(spine, service=service, data_root=demo, executor=on(cluster, 5)))


def test_snapshot_equals_single_node(project, demo, cluster):
    args = dict(service="fraud_model@v1", every="7d", start="2026-01-20", end="2026-03-01", data_root=demo)
    want = project.snapshot(**args)
    assert want.height > 100
    assert_same(want, project.snapshot(**args, executor=on(cluster, 3)))
    address = cluster[0].scheduler_address.replace("tcp://", "dask://")  # as the command line writes it
    assert_same(want, project.snapshot(**args, executor=address))


def test_data_kit_output_is_the_same_file(cluster, tmp_path):
    """On the shared benchmark kit's data, the CLI writes the same bytes with --executor."""
    if not (BENCH / "gen_data.py").exists():
        pytest.skip(f"the shared benchmark kit is not at {BENCH} (../shared/)")
    data = tmp_path / "kit"
    subprocess.run([sys.executable, BENCH / "gen_data.py", data, "--events", "20000", "--labels", "3000",
                    "--users", "500"], check=True)
    args = [ROOT / "features", "--service", "fraud_model@v1", "--spine", data / "labels.parquet",
            "--data-root", data]
    one = CliRunner().invoke(backfill_cmd, [str(a) for a in [*args, "--out", tmp_path / "one.parquet"]])
    assert one.exit_code == 0, one.output
    address = cluster[0].scheduler_address.replace("tcp://", "dask://")
    many = CliRunner().invoke(backfill_cmd, [str(a) for a in [*args, "--out", tmp_path / "many.parquet",
                                                              "--executor", address, "--partitions", "4"]])
    assert many.exit_code == 0, many.output
    assert (tmp_path / "one.parquet").read_bytes() == (tmp_path / "many.parquet").read_bytes()
    assert pl.read_parquet(tmp_path / "many.parquet").width == 3 + 22


@st.composite
def spines(draw, times: np.ndarray):
    """Spines over known and unknown users and shops (41-45, `zz`), at event times exactly, around
    them and outside the data, with duplicate rows; sometimes a null key."""
    n = draw(st.integers(0, 40))
    users = draw(st.lists(st.integers(1, 45), min_size=n, max_size=n))
    shops = draw(st.lists(st.sampled_from([*SHOPS, "zz"]), min_size=n, max_size=n))
    picks = draw(st.lists(st.integers(0, times.size - 1), min_size=n, max_size=n))
    shifts = draw(st.lists(st.sampled_from([0, 0, 1, -1, 3600 * S, -86400 * S, 30 * 86400 * S]), min_size=n,
                           max_size=n))
    ts = [int(times[i]) + d for i, d in zip(picks, shifts)]
    dup = draw(st.integers(0, n))  # repeat the first `dup` rows at the end
    users, shops, ts = users + users[:dup], shops + shops[:dup], ts + ts[:dup]
    spine = pl.DataFrame({"user_id": pl.Series(users, dtype=pl.Int64), "shop": pl.Series(shops, dtype=pl.String),
                          "ts": pl.Series(ts, dtype=pl.Int64).cast(pl.Datetime("us")),
                          "row": pl.int_range(len(ts), eager=True)})
    if n and draw(st.integers(0, 5)) == 0:
        spine = spine.with_columns(pl.when(pl.col("row") == n - 1).then(None).otherwise(pl.col("user_id"))
                                   .alias("user_id"))
    return spine


# The cluster's threads (Dask's comms and scheduler) draw from the global `random` while a spine
# is drawn here; Hypothesis sees the shared state move and blames the strategy, which uses none.
@pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies")
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(data=st.data())
def test_random_spines_equal_single_node(mixed, cluster, data):
    plan, root, times = mixed
    spine = data.draw(spines(times))
    partitions = data.draw(st.integers(1, 6))
    service = data.draw(st.sampled_from(["mixed", "users"]))
    try:
        want = backfill(plan, service, 1, spine, root)
    except BackfillError as err:
        with pytest.raises(BackfillError) as got:
            backfill(plan, service, 1, spine, root, executor=on(cluster, partitions))
        assert str(got.value) == str(err)
        return
    assert_same(want, backfill(plan, service, 1, spine, root, executor=on(cluster, partitions)))


def test_mixed_snapshot_equals_single_node(mixed, cluster):
    plan, root, _ = mixed
    args = (plan, "users", 1, root, 86400 * S, T0 + 86400 * S, T0 + 11 * 86400 * S)
    want = snapshot(*args)
    assert want.height > 100 and want["n_1h"].sum() > 0
    assert_same(want, snapshot(*args, executor=on(cluster, 3)))


def test_every_partition_gets_keys_and_each_key_one_partition():
    frame = pl.DataFrame({"k": pl.int_range(1000, eager=True)})
    parts = partitions_of(frame, ["k"], [Type("int64")], 7)
    assert set(parts.tolist()) == set(range(7))
    assert np.bincount(parts).min() > 100  # a hash, not a range: balanced
    again = partitions_of(frame.sample(fraction=1.0, shuffle=True, seed=1).sort("k"), ["k"], [Type("int64")], 7)
    assert np.array_equal(parts, again)


def test_a_key_lands_in_one_partition_whatever_its_stored_type():
    """int32 and int64 keys, strings and categoricals, any time unit: the canonical value decides."""
    ints = pl.DataFrame({"a": pl.Series([1, 2, 300, None], dtype=pl.Int32), "b": ["x", "y", None, "x"]})
    wide = ints.with_columns(pl.col("a").cast(pl.Int64), pl.col("b").cast(pl.Categorical))
    types = [Type("int64"), Type("string")]
    assert np.array_equal(partitions_of(ints, ["a", "b"], types, 5), partitions_of(wide, ["a", "b"], types, 5))
    times = pl.DataFrame({"t": pl.Series([0, 10**12, 5], dtype=pl.Int64).cast(pl.Datetime("ns"))})
    us = times.with_columns(pl.col("t").cast(pl.Datetime("us")))
    ts = [Type("timestamp")]
    assert np.array_equal(partitions_of(times, ["t"], ts, 3), partitions_of(us, ["t"], ts, 3))
    # a null anywhere in the key: partition 0 (read there, seen by no entity)
    assert partitions_of(ints, ["a", "b"], types, 5)[2:4].tolist()[0] == 0


PARTS = """
import sys, polars as pl
from astra.lang.types import Type
from astra.offline.distributed import partitions_of
f = pl.DataFrame({"i": range(-50, 150), "s": [f"k{i}é" for i in range(200)]})
print(partitions_of(f, ["i"], [Type("int64")], 6).tolist(), partitions_of(f, ["s"], [Type("string")], 6).tolist(),
      partitions_of(f, ["i", "s"], [Type("int64"), Type("string")], 6).tolist())
"""


def test_partitions_are_the_same_in_other_processes_and_hash_seeds():
    runs = {subprocess.run([sys.executable, "-c", PARTS], capture_output=True, text=True, check=True, cwd=ROOT,
                           env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "4242")}
    assert len(runs) == 1
    f = pl.DataFrame({"i": range(-50, 150), "s": [f"k{i}é" for i in range(200)]})
    here = (partitions_of(f, ["i"], [Type("int64")], 6).tolist(), partitions_of(f, ["s"], [Type("string")], 6).tolist(),
            partitions_of(f, ["i", "s"], [Type("int64"), Type("string")], 6).tolist())
    assert runs.pop().strip() == " ".join(map(str, here))
    assert len(set(here[1])) == 6


# --------------------------------------------------------------------------- the command line


def run_cli(*args):
    return CliRunner().invoke(backfill_cmd, [str(a) for a in args])


def cli_args(demo, out):
    return [ROOT / "features", "--service", "fraud_model@v2", "--spine", demo / "spine.parquet", "--data-root", demo,
            "--out", out]


def one_line_error(r, code: int = 1) -> str:
    assert r.exit_code == code, r.output
    assert "Traceback" not in r.output
    lines = [line for line in r.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, r.output
    return lines[0]


def test_cli_local_cluster_equals_single_node(demo, tmp_path):
    """`--executor dask` alone starts (and stops) a cluster of worker processes."""
    one = run_cli(*cli_args(demo, tmp_path / "one.parquet"))
    assert one.exit_code == 0, one.output
    many = run_cli(*cli_args(demo, tmp_path / "many.parquet"), "--executor", "dask", "--workers", "1",
                   "--worker-memory", "1GiB", "--partitions", "3")
    assert many.exit_code == 0, many.output
    assert_same(pl.read_parquet(tmp_path / "one.parquet"), pl.read_parquet(tmp_path / "many.parquet"))


@pytest.mark.parametrize("args, says", [
    (["--executor", "spark"], "unknown executor"),
    (["--executor", "dask://host:port"], "bad scheduler address"),
    (["--executor", "dask://"], "bad scheduler address"),
    (["--workers", "2"], "need(s) --executor dask"),
    (["--executor", "dask://127.0.0.1:8786", "--workers", "2"], "size a local cluster"),
    (["--executor", "dask", "--worker-memory", "lots"], "not a size"),
    (["--executor", "dask", "--worker-memory", "10MB"], "too little"),
])
def test_cli_refuses_malformed_executor_options(demo, tmp_path, args, says):
    assert says in one_line_error(run_cli(*cli_args(demo, tmp_path / "o.parquet"), *args), 2)
    assert not (tmp_path / "o.parquet").exists()


def test_missing_distributed_is_one_line(demo, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    line = one_line_error(run_cli(*cli_args(demo, tmp_path / "o.parquet"), "--executor", "dask"))
    assert "astra[dask]" in line
    with pytest.raises(BackfillError, match="needs the `distributed` package"):
        Project.load(ROOT / "features").backfill(pl.read_parquet(demo / "spine.parquet"), service="fraud_model@v1",
                                                 data_root=demo, executor="dask")


def test_unreachable_scheduler_is_one_line(demo, tmp_path, monkeypatch):
    monkeypatch.setattr(dist, "CONNECT_TIMEOUT", 1.0)
    import socket

    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    line = one_line_error(run_cli(*cli_args(demo, tmp_path / "o.parquet"), "--executor", f"dask://127.0.0.1:{port}"))
    assert f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port}" in line
    assert not (tmp_path / "o.parquet").exists()


def test_a_worker_dying_is_one_line(demo, tmp_path):
    """A cluster whose worker process dies whenever a backfill task starts: exit 1, one line."""
    from distributed.diagnostics.plugin import WorkerPlugin

    class DieOnBackfill(WorkerPlugin):  # local: pickled by value for the worker process
        def transition(self, key, start, finish, **kwargs):
            if finish == "executing" and str(key).startswith("astra-backfill"):
                os._exit(1)

    import dask

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), \
            distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, protocol="tcp",
                                     host="127.0.0.1", dashboard_address=None, scheduler_kwargs=QUIET,
                                     silence_logs=50) as c, \
            distributed.Client(c, set_as_default=False) as client:
        client.register_plugin(DieOnBackfill())
        r = run_cli(*cli_args(demo, tmp_path / "o.parquet"), "--executor",
                    c.scheduler_address.replace("tcp://", "dask://"))
    assert "a Dask worker died computing partition 1 of 1" in one_line_error(r)
    assert not (tmp_path / "o.parquet").exists()
