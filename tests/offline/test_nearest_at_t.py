""""k nearest at t" in a backfill (docs/vectors.md, "k nearest at t in a backfill"): per spine row,
the keys nearest to the row key's vector as it was strictly before the row's time, among the
versions visible then, the key itself left out, ties by key; nothing written at or after the
row's time is seen.  Checked against a brute-force reading of those rules, against the server's
answers at the same times, and for its errors."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import cdist

from astra import Online
from astra.clients.errors import NotFoundError
from astra.errors import DataError
from astra.offline.neighbors import nearest
from astra.project import load_project

DIM = 3
PROJECT = f"""
entity item {{ key item_id: int64 }}
snapshot items for item {{
    path "items.parquet"
    time ts
    columns {{ item_id: int64  colour: string  emb: vector<float32, {DIM}>? }}
}}
index near v1 on items.emb {{ metric euclidean; filter colour }}
index near_cos v1 on items.emb {{ metric cosine }}
"""
DAY = 86_400_000_000
T0 = 1_767_225_600_000_000  # 2026-01-01


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("project")
    (root / "p.feat").write_text(PROJECT)
    return load_project(root, allow_unlocked=True)


@pytest.fixture(scope="module")
def plan(project):
    return project.plan


def write_items(root, rows: list[tuple[int, int, list | None, str]]) -> None:
    """rows: (item_id, time µs, vector or None, colour), in file order."""
    pl.DataFrame({
        "item_id": pl.Series([r[0] for r in rows], dtype=pl.Int64),
        "ts": pl.Series([r[1] for r in rows], dtype=pl.Int64).cast(pl.Datetime("us")),
        "colour": [r[3] for r in rows],
        "emb": pl.Series([r[2] for r in rows], dtype=pl.Array(pl.Float32, DIM)),
    }).write_parquet(root / "items.parquet")


def brute_force(rows, key: int, t: int, k: int, metric: str = "euclidean", colour=None):
    """The documented rules, read directly: each key's latest row strictly before t (the later of
    equal times) is its version then, a null vector a delete; the key's own version is the query."""
    now: dict[int, tuple] = {}
    for item, when, vec, c in sorted(rows, key=lambda r: r[1]):  # stable: equal times keep file order
        if when < t:
            now[item] = (vec, c)
    if now.get(key, (None,))[0] is None:
        return None
    q = np.asarray([now[key][0]], np.float64)
    others = [(item, v) for item, (v, c) in now.items()
              if v is not None and item != key and (colour is None or c == colour)]
    if not others:
        return [], []
    d = cdist(q, np.asarray([v for _, v in others], np.float64), metric)[0]
    ranked = sorted(zip(d.tolist(), [i for i, _ in others]))[:k]
    return [i for _, i in ranked], [x for x, _ in ranked]


versions = st.lists(st.tuples(st.integers(0, 5), st.integers(0, 6),
                              st.one_of(st.none(), st.lists(st.integers(-3, 3), min_size=DIM, max_size=DIM)),
                              st.sampled_from(["red", "blue"])), min_size=1, max_size=25)
queries = st.lists(st.tuples(st.integers(0, 6), st.integers(0, 7), st.sampled_from([-1, 0, 1])),
                   min_size=1, max_size=20)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(versions=versions, asks=queries, k=st.integers(1, 4), colour=st.sampled_from([None, "red"]))
def test_neighbours_are_those_visible_strictly_before_each_time(plan, tmp_path, versions, asks, k, colour):
    # small integer components: every distance is exact, so ties are real ties, broken by key
    rows = [(item, T0 + day * DAY, vec, c) for item, day, vec, c in versions]
    write_items(tmp_path, rows)
    # times exactly at a change, just before and just after it
    spine = pl.DataFrame({"item_id": [a[0] for a in asks], "ts": [T0 + a[1] * DAY + a[2] for a in asks]})
    out = nearest(plan, "near@v1", spine, tmp_path, k=k, filter=None if colour is None else {"colour": colour})
    assert out.columns == ["item_id", "ts", "near_neighbors", "near_distances"]
    for (item, t), keys, dists in zip(spine.iter_rows(), out["near_neighbors"], out["near_distances"]):
        want = brute_force(rows, item, t, k, colour=colour)
        if want is None:
            assert keys is None and dists is None
        else:
            assert keys.to_list() == want[0]
            np.testing.assert_allclose(dists.to_list(), want[1], rtol=1e-12, atol=1e-12)


def test_a_change_at_the_query_time_is_not_seen(plan, tmp_path):
    a, b, c = [0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [5.0, 0.0, 0.0]
    write_items(tmp_path, [(1, T0, a, "red"), (2, T0, b, "red"), (3, T0, c, "red"),
                           (2, T0 + DAY, [9.0, 0.0, 0.0], "red"),  # item 2 moves away at T0 + DAY
                           (4, T0 + DAY, [0.5, 0.0, 0.0], "red")])  # item 4 appears then
    spine = pl.DataFrame({"item_id": [1, 1, 4, 4], "ts": [T0 + DAY, T0 + DAY + 1, T0 + DAY, T0 + DAY + 1]})
    out = nearest(plan, "near@v1", spine, tmp_path, k=2)
    assert out["near_neighbors"].to_list() == [[2, 3], [4, 3], None, [1, 3]]
    assert out["near_distances"].to_list() == [[1.0, 5.0], [0.5, 5.0], None, [0.5, 4.5]]


def test_a_null_vector_deletes_the_key_from_its_time(plan, tmp_path):
    write_items(tmp_path, [(1, T0, [0.0, 0.0, 1.0], "red"), (2, T0, [0.0, 1.0, 0.0], "red"),
                           (2, T0 + DAY, None, "red")])
    spine = pl.DataFrame({"item_id": [1, 1, 2], "ts": [T0 + DAY, T0 + DAY + 1, T0 + 2 * DAY]})
    out = nearest(plan, "near@v1", spine, tmp_path, k=3)
    assert out["near_neighbors"].to_list() == [[2], [], None]


def test_the_backfill_equals_the_servers_answers_at_the_same_times(project, plan, tmp_path):
    rng = np.random.default_rng(7)
    rows = []
    for day in range(4):
        for item in rng.choice(60, size=40, replace=False).tolist():
            vec = None if rng.random() < 0.1 else rng.normal(size=DIM).astype(np.float32).tolist()
            rows.append((item, T0 + day * DAY + int(rng.integers(0, DAY)), vec, ["red", "blue"][item % 2]))
    write_items(tmp_path, rows)
    times = rng.integers(T0, T0 + 5 * DAY, size=150)
    times[:20] = [r[1] for r in rows[:20]]  # some exactly at a change
    spine = pl.DataFrame({"item_id": rng.integers(0, 62, size=150), "ts": pl.Series(times).cast(pl.Datetime("us"))})
    online = Online(project, data_root=tmp_path)
    for index, metric in (("near@v1", "euclidean"), ("near_cos@v1", "cosine")):
        out = nearest(plan, index, spine, tmp_path, k=5)
        name = index.split("@")[0]
        for (item, _), t, keys, dists in zip(spine.iter_rows(), times.tolist(), out[f"{name}_neighbors"],
                                            out[f"{name}_distances"]):
            try:
                served = online.neighbors(index, key=item, k=5, at=t)["neighbors"]
            except NotFoundError:  # the key has no vector at t: a 404 from the server
                assert keys is None
                continue
            assert keys.to_list() == [n["key"] for n in served]
            assert dists.to_list() == [n["distance"] for n in served]
            want = brute_force(rows, item, t, 5, metric)
            assert keys.to_list() == want[0]
            np.testing.assert_allclose(dists.to_list(), want[1], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("index", "spine", "k", "message"), [
    ("nope@v1", {"item_id": [1], "ts": [T0]}, 3, "unknown index `nope`; indexes: near@v1, near_cos@v1"),
    ("near", {"item_id": [1], "ts": [T0]}, 3, "say which version of `near`: near@v1"),
    ("near@v2", {"item_id": [1], "ts": [T0]}, 3, "unknown index version `near@v2`; available: v1"),
    ("near@v1", {"item_id": [1], "ts": [T0]}, 0, "k must be an integer from 1"),
    ("near@v1", {"item": [1], "ts": [T0]}, 3, "spine is missing key column(s) item_id of entity `item`"),
    ("near@v1", {"item_id": [1], "when": [T0]}, 3, "spine has no time column `ts`"),
    ("near@v1", {"item_id": [1], "ts": [T0], "near_distances": [0.0]}, 3,
     "spine column(s) near_distances have the same name as the neighbour columns of near@v1"),
])
def test_bad_requests_are_one_line_errors(plan, tmp_path, index, spine, k, message):
    write_items(tmp_path, [(1, T0, [0.0, 0.0, 1.0], "red")])
    with pytest.raises(DataError) as err:
        nearest(plan, index, pl.DataFrame(spine), tmp_path, k=k)
    assert message in str(err.value)


def test_a_filter_on_an_undeclared_column_is_an_error(plan, tmp_path):
    write_items(tmp_path, [(1, T0, [0.0, 0.0, 1.0], "red")])
    with pytest.raises(DataError, match="unknown filter column `shelf`"):
        nearest(plan, "near@v1", pl.DataFrame({"item_id": [1], "ts": [T0]}), tmp_path, filter={"shelf": 1})


def test_a_missing_source_file_names_it(plan, tmp_path):
    with pytest.raises(DataError, match=r"items\.parquet"):
        nearest(plan, "near@v1", pl.DataFrame({"item_id": [1], "ts": [T0]}), tmp_path)


def _cli(*args):
    from click.testing import CliRunner

    from astra.cli.backfill import backfill

    return CliRunner().invoke(backfill, [str(a) for a in args])


def test_astra_backfill_adds_neighbours_beside_a_service_or_alone(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "p.feat").write_text(PROJECT + """
events views for item {
    path "views.parquet"
    time ts
    columns { item_id: int64 }
}
features seen v1 for item { views_1d: int64 = count(views, 1d) }
service shop v1 { seen@v1.views_1d }
""")
    write_items(tmp_path, [(1, T0, [0.0, 0.0, 0.0], "red"), (2, T0, [1.0, 0.0, 0.0], "red"),
                           (3, T0 + DAY, [2.0, 0.0, 0.0], "blue")])
    pl.DataFrame({"item_id": [1, 1, 2], "ts": pl.Series([T0 + 10, T0 + 20, T0 + 30]).cast(pl.Datetime("us"))}
                 ).write_parquet(tmp_path / "views.parquet")
    spine = tmp_path / "spine.parquet"
    pl.DataFrame({"item_id": [1, 1], "ts": pl.Series([T0 + DAY, T0 + DAY + 11]).cast(pl.Datetime("us"))}
                 ).write_parquet(spine)
    out = tmp_path / "out.parquet"
    common = [project, "--spine", spine, "--data-root", tmp_path, "--allow-unlocked"]

    got = _cli(*common, "--out", out, "--service", "shop@v1", "--neighbors", "near@v1", "-k", "2")
    assert got.exit_code == 0, got.output
    frame = pl.read_parquet(out)
    assert frame.columns == ["item_id", "ts", "views_1d", "near_neighbors", "near_distances"]
    assert frame["views_1d"].to_list() == [2, 1]  # [t - 1d, t): at T0 + DAY + 11 the view at T0 + 10 is out
    assert frame["near_neighbors"].to_list() == [[2], [2, 3]]  # item 3 exists from T0 + DAY on, strictly

    got = _cli(*common, "--out", out, "--neighbors", "near@v1", "--neighbors", "near_cos@v1", "-k", "1")
    assert got.exit_code == 0, got.output
    assert pl.read_parquet(out).columns == ["item_id", "ts", "near_neighbors", "near_distances",
                                            "near_cos_neighbors", "near_cos_distances"]


@pytest.mark.parametrize(("args", "code", "message"), [
    ([], 2, "give --service (or --neighbors INDEX@vN, or both)"),
    (["--neighbors", "far@v1"], 1, "unknown index `far`; indexes: near@v1, near_cos@v1"),
    (["--neighbors", "near@v1", "-k", "0"], 2, "Invalid value for '-k'"),
    (["--neighbors", "near@v1", "--out", "x.csv"], 2, "CSV cannot hold the list columns"),
])
def test_astra_backfill_neighbour_errors_are_one_line(tmp_path, args, code, message):
    project = tmp_path / "project"
    project.mkdir()
    (project / "p.feat").write_text(PROJECT)
    spine = tmp_path / "spine.parquet"
    pl.DataFrame({"item_id": [1], "ts": [T0]}).write_parquet(spine)
    out = ["--out", tmp_path / "out.parquet"] if "--out" not in args else []
    got = _cli(project, "--spine", spine, "--data-root", tmp_path, "--allow-unlocked", *out,
               *[tmp_path / a if a == "x.csv" else a for a in args])
    assert got.exit_code == code
    assert message in got.output
    assert "Traceback" not in got.output


def test_project_backfill_takes_neighbours(project, tmp_path):
    write_items(tmp_path, [(1, T0, [0.0, 0.0, 0.0], "red"), (2, T0, [3.0, 0.0, 0.0], "red")])
    got = project.backfill({"item_id": [1], "ts": [T0 + 1]}, neighbors="near@v1", k=1, data_root=tmp_path)
    assert got["near_neighbors"].to_list() == [[2]] and got["near_distances"].to_list() == [[3.0]]
    from astra.project import ProjectError

    with pytest.raises(ProjectError, match="say what to compute"):
        project.backfill({"item_id": [1], "ts": [T0 + 1]}, data_root=tmp_path)
    with pytest.raises(ProjectError, match="unknown index `far`"):
        project.backfill({"item_id": [1], "ts": [T0 + 1]}, neighbors=["far@v1"], data_root=tmp_path)
