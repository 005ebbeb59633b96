"""`astra.Online` and `astra.Client` (against a live `astra serve`) give the same frames, typed by the
declared feature types, for every service of the demo project; and the values are the backfill's
at the same times (the point-in-time contract of docs/semantics.md)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import polars as pl
import pytest
from polars.testing import assert_frame_equal

import astra

AT = dt.datetime(2026, 3, 2)  # just after the demo's newest event
EARLIER = dt.datetime(2026, 2, 25, 12)  # inside the 10 days of allowed lateness
US = dt.timedelta(microseconds=1)


def micros(t: dt.datetime) -> int:
    return (t - dt.datetime(1970, 1, 1)) // US


def users(n=12) -> list[dict]:
    return [{"user_id": u} for u in range(1, n)] + [{"user_id": 10**6}]  # the last one is unknown


def both(online, client, *args, **kw) -> pl.DataFrame:
    a, b = online.get(*args, **kw), client.get(*args, **kw)
    assert_frame_equal(a, b)
    return a


def test_both_implement_the_interface(online, client):
    assert isinstance(online, astra.FeatureClient) and isinstance(client, astra.FeatureClient)


def reads_rows(plan, feature: str) -> bool:
    """Does the feature read a source, itself or through the features it uses?"""
    from astra.plan import ir

    return any(isinstance(n, ir.Aggregate | ir.AsOf) for f in plan.closure((feature,)) for n in ir.walk(f.expr))


@pytest.mark.parametrize("at", [AT, EARLIER])
def test_every_service_the_same_frame_from_both(project, online, client, at):
    for svc in project.plan.services:
        keys = [k for e in svc.entities for k, _ in project.plan.entity(e).keys]
        ents = [{k: (u if k == "user_id" else m) for k in dict.fromkeys(keys)}
                for u, m in ((1, 7), (2, 7), (5, 3), (10, 7), (10**6, 10**6))]
        request = {"amount": 12.5} if svc.requests else None
        df = both(online, client, svc.id, ents, at=at, request=request, status=True)
        outputs = [o.name for o in svc.outputs]
        assert df.columns == [*dict.fromkeys(keys), *outputs, "_missing", "_stale"], svc.id
        assert df.height == len(ents)
        # the unknown entity: every output missing except those that read no source (request
        # inputs, or the key alone: an experiment's arm is known for any unit)
        assert df["_missing"][-1].to_list() == [o.name for o in svc.outputs if reads_rows(project.plan, o.feature)], \
            svc.id
        assert df["_missing"][0].to_list() != df["_missing"][-1].to_list(), svc.id


def test_frames_are_typed_by_the_declared_types(online, client):
    ents = [{"user_id": 10, "merchant_id": 7}, {"user_id": 10**6, "merchant_id": 7}]
    df = both(online, client, "fraud_model@v2", ents, at=AT, request={"amount": 12.5, "channel": "web"})
    want = {"user_id": pl.Int64, "merchant_id": pl.Int64, "tx_count_7d": pl.Int64, "tx_min_7d": pl.Float64,
            "recent_categories": pl.List(pl.String), "spend_band": pl.String, "profile_tier": pl.Int32,
            "is_regular": pl.Boolean, "hours_since_last_tx": pl.Float64, "is_web": pl.Boolean}
    assert {k: df.schema[k] for k in want} == want
    unknown = df.row(1, named=True)
    # declared non-null features hold their defaults for an unknown entity, optional ones are null
    assert unknown["tx_count_7d"] == 0 and unknown["recent_categories"] == [] and unknown["spend_band"] == "low"
    assert unknown["tx_min_7d"] is None and unknown["profile_tier"] is None and unknown["is_web"] is True
    for name, t in zip(df.columns[2:], next(o for o in online.registry()["services"]
                                        if (o["name"], o["version"]) == ("fraud_model", 2))["features"]):
        assert t["name"] == name
        if not t["type"].endswith("?"):
            assert df[name].null_count() == 0, name


def test_values_are_the_backfills_at_the_same_times(project, demo, client):
    times = [AT, EARLIER, AT - dt.timedelta(hours=5), EARLIER + dt.timedelta(days=2, minutes=7)]
    spine = pl.DataFrame({"user_id": [3, 10, 22, 41], "ts": times})
    offline = project.backfill(spine, service="fraud_model@v1", data_root=demo).drop("ts")
    online = client.get("fraud_model@v1", spine.select("user_id"), at=spine["ts"])
    assert_frame_equal(online, offline, check_exact=False, rel_tol=1e-9)


def test_times_in_every_accepted_form_mean_the_same(online, client):
    ents = users(5)
    want = client.get("fraud_model@v1", ents, at=micros(AT))
    for at in (AT, AT.isoformat(), AT.date(), AT.replace(tzinfo=dt.UTC), [AT] * len(ents), pl.Series([AT] * len(ents))):
        assert_frame_equal(client.get("fraud_model@v1", ents, at=at), want)
        assert_frame_equal(online.get("fraud_model@v1", ents, at=at), want)
    per_entity = [AT - dt.timedelta(days=d) for d in range(len(ents))]
    got = both(online, client, "fraud_model@v1", ents, at=per_entity)
    for j, t in enumerate(per_entity):  # one time per entity: each row as if asked alone
        assert_frame_equal(got[j], client.get("fraud_model@v1", ents[j:j + 1], at=t))


def test_entities_from_dataframes(online, client):
    ents = users(6)
    want = client.get("fraud_model@v1", ents, at=AT)
    assert_frame_equal(both(online, client, "fraud_model@v1", pl.DataFrame(ents), at=AT), want)
    assert_frame_equal(both(online, client, "fraud_model@v1", pd.DataFrame(ents), at=AT), want)
    assert_frame_equal(both(online, client, "fraud_model", ents, at=AT, version=1), want)


def test_a_feature_subset_and_status(online, client):
    df = both(online, client, "fraud_model@v1", users(4), at=AT, features=["country", "tx_count_7d"], status=True)
    assert df.columns == ["user_id", "country", "tx_count_7d", "_missing", "_stale"]
    assert df["_missing"][-1].to_list() == ["tx_count_7d", "country"]  # the service's order
    full = client.get("fraud_model@v1", users(4), at=AT)
    assert_frame_equal(df.select("user_id", "country", "tx_count_7d"), full.select("user_id", "country", "tx_count_7d"))
    # a year after the data, transactions (max_staleness 1h) are stale and profiles (none declared) are not
    late = client.get("fraud_model@v1", users(2), at=dt.datetime(2027, 3, 1), status=True)
    assert "tx_count_1h" in late["_stale"][0] and "country" not in late["_stale"][0]


@pytest.mark.parametrize("limit", [2, 7, 4096])
def test_answers_stay_the_servers_when_selections_and_times_alternate(online, client, monkeypatch, limit):
    # Online keeps each selection's frame layout and its missing/stale name lists, and starts over
    # past a bound: small bounds make queries find them gone, or kept for another selection
    from astra.clients import inprocess

    monkeypatch.setattr(inprocess, "MEMO_LIMIT", limit)
    late = dt.datetime(2027, 3, 1)  # transactions stale (max_staleness 1h), profiles not
    subsets = [None, ["country"], ["tx_count_1h", "country"], ["tx_count_7d", "tx_count_1h"]]
    for _ in range(2):
        for features in subsets:
            for at in (AT, late, [AT, late, AT, late]):
                df = both(online, client, "fraud_model@v1", users(4), at=at, features=features, status=True)
                assert set(df["_missing"][-1]) == set(df.columns[1:-2])  # the unknown user: every one chosen
    assert len(online._shapes) <= limit


def test_registry_is_the_same(online, client):
    reg = client.registry()
    assert reg == online.registry()
    assert {(s["name"], s["version"]) for s in reg["services"]} >= {("fraud_model", 1), ("fraud_model", 2)}


def test_a_deprecated_service_warns_from_both(tmp_path, demo):
    import shutil

    from serve_harness import FEATURES, launch

    proj = tmp_path / "features"
    shutil.copytree(FEATURES, proj, ignore=shutil.ignore_patterns("build"))
    legacy = 'import "profile.feat"\n\nservice legacy_profile v1 {\n    user_profile@v2.*\n}\n'
    (proj / "legacy.feat").write_text(legacy)
    server = launch(proj, tmp_path / "state", "--data-root", str(demo))
    try:
        with astra.Client(server.url) as client, pytest.warns(astra.clients.DeprecatedServiceWarning,
                                                              match="legacy_profile@v1: user_profile@v2 is deprecated"):
            remote = client.get("legacy_profile@v1", users(3), at=AT)
        with pytest.warns(astra.clients.DeprecatedServiceWarning, match="v2 guessed a default country"):
            local = astra.Online(proj, data_root=demo).get("legacy_profile@v1", users(3), at=AT)
        assert_frame_equal(local, remote)
        assert local["country"][-1] == "unknown"  # v2's default for an unknown user
    finally:
        server.stop()


def test_more_entities_than_the_servers_batch_limit(online, client):
    ents = [{"user_id": u % 90} for u in range(1201)]  # the server's default --max-batch is 1000
    got = both(online, client, "fraud_model@v1", ents, at=AT, status=True)
    assert got.height == 1201 and got["user_id"].to_list() == [e["user_id"] for e in ents]
    assert client._max_batch == 1000  # learnt from the server's batch_too_large answer
    assert_frame_equal(client.get("fraud_model@v1", ents[:3], at=AT), got.head(3).drop("_missing", "_stale"))


def test_request_fields_per_entity(online, client):
    ents = [{"user_id": 10, "merchant_id": 7}, {"user_id": 11, "merchant_id": 7}]
    reqs = [{"amount": 5000.0, "channel": "web"}, {"amount": 1.0}]
    got = both(online, client, "fraud_model@v2", ents, at=AT, request=reqs, features=["is_web", "amount_over_limit"])
    assert got["is_web"].to_list() == [True, False]
    for j in range(2):  # each row as if asked alone with its own inputs
        alone = client.get("fraud_model@v2", ents[j:j + 1], at=AT, request=reqs[j],
                           features=["is_web", "amount_over_limit"])
        assert_frame_equal(got[j], alone)
    assert_frame_equal(both(online, client, "fraud_model@v2", ents, at=AT, request=pl.DataFrame(
        [{"amount": 5000.0, "channel": "web"}, {"amount": 1.0, "channel": None}]),
        features=["is_web", "amount_over_limit"]), got)
