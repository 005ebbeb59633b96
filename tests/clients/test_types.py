"""Every kind of declared type comes back as its Polars dtype from both clients: timestamps,
durations, lists (of strings, timestamps, floats), nullable and non-null floats; and non-finite
floats (sums and maxima over infinite amounts) decode to floats, whether the server writes them as
the strings "NaN", "Infinity", "-Infinity" or not yet."""

from __future__ import annotations

import datetime as dt
import math

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from serve_harness import launch

import astra
from astra.clients.codec import column, jsonable

T = dt.datetime(2026, 3, 1)
AT = T + dt.timedelta(hours=1)
KINDS = """
entity user {
    key user_id: int64
}

events tx for user {
    path "tx.parquet"
    time ts
    columns {
        user_id: int64
        amount: float64?
        category: string
    }
}

features kinds v1 for user {
    last_ts: timestamp? = last(tx.ts)
    since_last: duration? = now() - last(tx.ts)
    cats: list<string> = last_k(tx.category, 3, 7d)
    recent_ts: list<timestamp> = last_k(tx.ts, 2, 7d)
    recent_amounts: list<float64?> = last_k(tx.amount, 2, 7d)
    total_7d: float64 = sum(tx.amount, 7d)
    top_7d: float64? = max(tx.amount, 7d)
    n_7d: int64 = count(tx, 7d)
}

service kinds v1 {
    kinds@v1.*
}
"""
ENTITIES = [{"user_id": u} for u in (1, 2, 3, 4)]  # 1: inf, 2: inf and -inf (NaN sum), 3: finite, 4: unknown


@pytest.fixture(scope="module")
def kinds(tmp_path_factory):
    root = tmp_path_factory.mktemp("kinds")
    (root / "kinds.feat").write_text(KINDS)
    pl.DataFrame({"user_id": [1, 1, 2, 2, 3, 3], "amount": [1.0, math.inf, math.inf, -math.inf, 2.0, None],
                  "category": list("abcdef"), "ts": [T - dt.timedelta(hours=h) for h in (5, 4, 3, 2, 1, 0)]}
                 ).write_parquet(root / "tx.parquet")
    server = launch(root, root / "state", "--data-root", str(root))
    yield root, server
    server.stop()


def test_declared_types_become_polars_dtypes(kinds):
    root, server = kinds
    online = astra.Online(root)
    with astra.Client(server.url) as client:
        a = online.get("kinds@v1", ENTITIES, at=AT)
        b = client.get("kinds@v1", ENTITIES, at=AT)
    want = {"user_id": pl.Int64, "last_ts": pl.Datetime("us"), "since_last": pl.Duration("us"),
            "cats": pl.List(pl.String), "recent_ts": pl.List(pl.Datetime("us")), "recent_amounts": pl.List(pl.Float64),
            "total_7d": pl.Float64, "top_7d": pl.Float64, "n_7d": pl.Int64}
    assert dict(a.schema) == want and dict(b.schema) == want
    finite = ["user_id", "last_ts", "since_last", "cats", "recent_ts", "n_7d"]
    assert_frame_equal(a.select(finite), b.select(finite))
    user3 = a.row(2, named=True)
    assert user3["last_ts"] == T and user3["since_last"] == dt.timedelta(hours=1)
    assert user3["cats"] == ["f", "e"] and user3["recent_ts"] == [T, T - dt.timedelta(hours=1)]
    assert user3["total_7d"] == 2.0 and user3["recent_amounts"] == [2.0]  # last_k skips the null amount
    unknown = a.row(3, named=True)
    assert unknown["last_ts"] is None and unknown["since_last"] is None and unknown["top_7d"] is None
    assert unknown["cats"] == [] and unknown["total_7d"] == 0.0 and unknown["n_7d"] == 0
    # in process, the store's non-finite floats arrive as they are
    assert a["total_7d"][0] == math.inf and math.isnan(a["total_7d"][1]) and a["top_7d"][1] == math.inf
    assert a["recent_amounts"][1].to_list() == [-math.inf, math.inf]


def test_non_finite_floats_from_the_server(kinds):
    root, server = kinds
    body = {"service": "kinds", "version": 1, "entities": ENTITIES[:2], "at": AT.isoformat()}
    status, _, raw = server.client.post("/v1/features", body)
    assert status == 200, raw
    total = raw["results"][1]["values"][5]
    assert total == "NaN" and raw["results"][0]["values"][5] == "Infinity"
    with astra.Client(server.url) as client:
        got = client.get("kinds@v1", ENTITIES, at=AT)
    assert_frame_equal(got, astra.Online(root).get("kinds@v1", ENTITIES, at=AT))


def test_the_decoder_reads_the_strings_and_numbers_alike():
    s = column("x", "float64?", [1, 2.5, "NaN", "Infinity", "-Infinity", None])
    assert s.dtype == pl.Float64 and s[0] == 1.0 and s[1] == 2.5 and math.isnan(s[2])
    assert s[3] == math.inf and s[4] == -math.inf and s[5] is None
    lst = column("l", "list<float64?>", [["Infinity", 1.0, None], None, []])
    assert lst.dtype == pl.List(pl.Float64) and lst[0].to_list() == [math.inf, 1.0, None] and lst[1] is None
    f32 = column("f", "float32", ["-Infinity", 0.5])
    assert f32.dtype == pl.Float32 and f32.to_list() == [-math.inf, 0.5]
    vec = column("v", "vector<float32, 2>?", [[1.0, "NaN"], None])
    assert vec.dtype == pl.Array(pl.Float32, 2) and vec[1] is None and math.isnan(vec[0][1])
    assert column("s", "string?", ["NaN", None]).to_list() == ["NaN", None]  # strings stay strings
    assert column("i", "int64", [1.0, 2]).to_list() == [1, 2]  # an integral float is the integer
    ts = column("t", "timestamp?", [0, None])
    assert ts.dtype == pl.Datetime("us") and ts[0] == dt.datetime(1970, 1, 1)
    assert column("d", "duration", [3_600_000_000]).to_list() == [dt.timedelta(hours=1)]


def test_values_sent_are_json_the_server_reads():
    import numpy as np

    assert jsonable(math.nan) == "NaN" and jsonable([math.inf, -math.inf]) == ["Infinity", "-Infinity"]
    assert jsonable(dt.datetime(1970, 1, 1, 0, 0, 1)) == 1_000_000
    assert jsonable(dt.datetime(1970, 1, 1, 2, tzinfo=dt.timezone(dt.timedelta(hours=2)))) == 0
    assert jsonable(dt.date(1970, 1, 2)) == 86_400_000_000 and jsonable(dt.timedelta(seconds=2)) == 2_000_000
    assert jsonable(np.int32(7)) == 7 and type(jsonable(np.int32(7))) is int and jsonable(np.float64("nan")) == "NaN"
    assert jsonable(np.datetime64("1970-01-01T00:00:01")) == 1_000_000 and jsonable(np.datetime64("NaT")) is None
    assert jsonable({"a": (1, np.bool_(True))}) == {"a": [1, True]}
    with pytest.raises(TypeError, match="cannot send a object"):
        jsonable(object())


def test_the_row_builder_and_polars_public_constructor_agree():
    from astra.clients.codec import _layout, from_rows

    cols = (("k", "int64"), ("t", "timestamp?"), ("f", "float64?"), ("l", "list<string>"), ("v", "vector<float32, 2>?"),
            ("i", "int32?"), ("b", "bool"))
    lay = _layout(cols)
    rows = [[1, 5, 1.5, ("a", "b"), [1.0, 2.0], 3, True], [2, None, None, [], None, None, False]]
    fast, public = from_rows(rows, lay.schema), from_rows(rows, lay.schema, fast=False)
    assert_frame_equal(fast, public)
    assert fast.schema == lay.schema and fast["l"].to_list() == [["a", "b"], []]
