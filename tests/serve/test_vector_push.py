"""Vectors over HTTP against a real `astra serve`: a pushed JSON array is stored and read back as of
the query time, vector functions are served, and a bad vector is a 422 naming the row and column
(docs/language.md, "Vectors")."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
from serve_harness import Client

PROJECT = """
entity user { key uid: int64 }
snapshot profiles for user {
    path "profiles.parquet"
    time ts
    columns { uid: int64  taste: vector<float32, 3>? }
}
features vec v1 for user {
    taste: vector<float32, 3>? = profiles.taste
    length: float64? = norm(taste)
    direction: vector<float32, 3>? = normalize(taste)
    doubled: vector<float32, 3>? = 2 * taste
}
service svc v1 { vec@v1.* }
"""


def _start(tmp_path, servers):
    project, data = tmp_path / "project", tmp_path / "data"
    project.mkdir()
    data.mkdir()
    (project / "p.feat").write_text(PROJECT)
    pl.DataFrame({"uid": [1], "ts": pl.Series(["2026-01-01T00:00:00"]).str.to_datetime("%Y-%m-%dT%H:%M:%S"),
                  "taste": pl.Series([[1.0, 2.0, 2.0]], dtype=pl.Array(pl.Float32, 3))}) \
        .write_parquet(data / "profiles.parquet")
    server = servers(project, tmp_path / "state", "--data-root", str(data))
    return Client(server.port)


def _features(c: Client, uid: int) -> dict:
    status, _, body = c.post("/v1/features", {"service": "svc", "version": 1, "entities": [{"uid": uid}],
                                             "at": "2026-01-03T00:00:00"})
    assert status == 200, body
    names = [f["name"] for f in body["features"]]
    return dict(zip(names, body["results"][0]["values"]))


def test_a_pushed_vector_is_served_and_a_bad_one_is_a_422(tmp_path, servers) -> None:
    c = _start(tmp_path, servers)
    got = _features(c, 1)  # from the source file
    assert got["taste"] == [1.0, 2.0, 2.0] and got["length"] == 3.0 and got["doubled"] == [2.0, 4.0, 4.0]
    assert got["direction"] == [float(np.float32(x / 3)) for x in (1.0, 2.0, 2.0)]  # float32 elements

    ok = {"uid": 2, "ts": "2026-01-02T00:00:00", "taste": [0.0, 3, 4.0]}
    status, _, ack = c.post("/v1/push", {"source": "profiles", "rows": [ok, {**ok, "uid": 3, "taste": [0, 0, 0]}]})
    assert status == 200 and ack["accepted"] == 2, ack
    got = _features(c, 2)
    assert got["taste"] == [0.0, 3.0, 4.0] and got["length"] == 5.0
    assert [math.isclose(x, y, rel_tol=1e-7) for x, y in zip(got["direction"], [0.0, 0.6, 0.8])] == [True] * 3
    zero = _features(c, 3)
    assert zero["length"] == 0.0 and zero["direction"] is None  # normalize of the zero vector is null

    bad = [{**ok, "taste": [1.0, 2.0]}, {**ok, "taste": [1.0, None, 2.0]}, {**ok, "taste": [1.0, "NaN", 2.0]},
           {**ok, "taste": "1,2,3"}, {**ok, "taste": [1e39, 0.0, 0.0]}, {**ok, "taste": [True, 0.0, 0.0]}, ok]
    status, _, body = c.post("/v1/push", {"source": "profiles", "rows": bad})
    assert status == 422, body
    errors = body["error"]["errors"]
    assert [e["location"] for e in errors] == [f"rows[{j}].taste" for j in range(6)]
    messages = [e["message"] for e in errors]
    assert "has 2 elements, expected 3" in messages[0]
    assert "element 1 is None" in messages[1] and "element 1 is 'NaN'" in messages[2]
    assert "is not a `vector<float32, 3>`" in messages[3] and "beyond float32's range" in messages[4]
    assert "not a number" in messages[5]
    assert _features(c, 2)["taste"] == [0.0, 3.0, 4.0], "nothing of the rejected batch is stored"


def test_a_sparse_vector_pushes_as_index_value_pairs_and_a_broken_one_is_a_422(tmp_path, servers) -> None:
    c = _start(tmp_path, servers)
    row = {"uid": 4, "ts": "2026-01-02T00:00:00", "taste": {"2": 4.0, "1": 3}}  # index -> value
    status, _, ack = c.post("/v1/push", {"source": "profiles", "rows": [row]})
    assert status == 200 and ack["accepted"] == 1, ack
    got = _features(c, 4)
    assert got["taste"] == [0.0, 3.0, 4.0] and got["length"] == 5.0  # the unnamed element is 0

    bad = [{**row, "uid": 5, "taste": {"3": 1.0}},
           {**row, "uid": 5, "taste": {"01": 1.0}},
           {**row, "uid": 5, "taste": {"indices": [0], "values": [1.0]}},
           {**row, "uid": 5, "taste": {"0": "1"}}]
    status, _, body = c.post("/v1/push", {"source": "profiles", "rows": bad})
    assert status == 422, body
    errors = body["error"]["errors"]
    assert [e["location"] for e in errors] == [f"rows[{j}].taste" for j in range(4)]
    messages = [e["message"] for e in errors]
    assert "outside [0, 3)" in messages[0] and "'01' is not an index" in messages[1]
    assert "'indices' is not an index" in messages[2] and "not a number" in messages[3]
    assert _features(c, 5)["taste"] is None, "nothing of the rejected batch is stored"
