"""Per-feature missing flags: a feature is missing for an entity when no source it reads (directly
or through the features it references) holds the entity; defaults still apply."""

from __future__ import annotations

import polars as pl
import pytest
from serve_harness import FEATURES

from astra.online import Store
from astra.online.store import SMALL
from astra.project import Project

PROFILE = ("country", "tier", "credit_limit")  # user_profile@v1: reads `profiles` only


def _users(demo):
    tx = set(pl.read_parquet(demo / "transactions.parquet")["user_id"].to_list())
    prof = set(pl.read_parquet(demo / "profiles.parquet")["user_id"].to_list())
    only_profile = sorted(prof - tx)
    both = sorted(prof & tx)
    assert only_profile and both, "the demo data should have users with profiles but no transactions"
    return only_profile[0], both[0], 10**9


@pytest.fixture(scope="module")
def store(demo):
    s = Store(Project.load(FEATURES).plan)
    s.materialize(demo)
    return s


@pytest.mark.parametrize("path", ["single", "batch"])
def test_missing_per_feature(store, demo, path):
    profile_only, both, unknown = _users(demo)
    at = max(store.watermark.values()) + 1
    ents = [{"user_id": profile_only}, {"user_id": both}, {"user_id": unknown}]
    if path == "batch":  # past the single-entity plan's batch size
        ents += [{"user_id": both}] * SMALL
    res = store.get("fraud_model@v1", ents, at=at)
    names = [n for n, _ in res.types]
    miss = res.missing_outputs()
    flags = res.missing_features
    p = [names[i] for i in miss[0]]
    assert "tx_count_1h" in p and "spend_ratio_1d_30d" in p and not set(PROFILE) & set(p)
    assert miss[1] == ()
    assert [names[i] for i in miss[2]] == names  # unknown: every output reads a source
    assert flags[0, names.index("tx_count_1h")] and not flags[0, names.index("country")]
    assert flags[2].all() and not flags[1].any()
    assert res.missing.tolist()[:3] == [False, False, True]  # the entity-level flag: known nowhere
    row = res.tuples()[0]
    assert row[names.index("tx_count_1h")] == 0  # count's empty value still applied
    assert row[names.index("country")] is not None


def test_missing_in_api_and_metrics(api, demo):
    profile_only, both, unknown = _users(demo)
    c = api.client
    before = c.get("/metrics")[2]
    status, _, body = c.post("/v1/features", {"service": "fraud_model", "version": 1,
                                              "entities": [{"user_id": profile_only}, {"user_id": both},
                                                           {"user_id": unknown}]})
    assert status == 200, body
    names = [f["name"] for f in body["features"]]
    r0, r1, r2 = body["results"]
    assert "tx_count_1h" in r0["missing"] and not set(PROFILE) & set(r0["missing"])
    assert r0["values"][names.index("tx_count_1h")] == 0 and r0["values"][names.index("country")] is not None
    assert r1["missing"] == [] and r2["missing"] == names
    # a subset of the outputs lists only its own missing features
    status, _, sub = c.post("/v1/features", {"service": "fraud_model", "version": 1, "features": ["country",
                            "tx_count_1h"], "entities": [{"user_id": profile_only}], "at": body["at"]})
    assert sub["results"][0]["missing"] == ["tx_count_1h"]
    after = c.get("/metrics")[2]

    def count(text, feature):
        line = f'astra_feature_missing_total{{feature="{feature}",service="fraud_model@v1"}} '
        found = [ln for ln in text.splitlines() if ln.startswith(line)]
        return float(found[0].split()[-1]) if found else 0.0

    assert count(after, "tx_count_1h") - count(before, "tx_count_1h") == 3  # profile-only, unknown, subset
    assert count(after, "country") - count(before, "country") == 1  # the unknown user only
