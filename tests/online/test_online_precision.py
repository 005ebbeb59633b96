"""The online store's float sums and means are exact to 1e-9 of each window's own values, in
both plans, however the rows were pushed (at once, one by one, in batches, replayed with
eviction) and after a restart (docs/semantics.md, "Floating point"; the oracle is in
tests/precision_cases.py)."""

from __future__ import annotations

import random

from agg_engines import check, compile_features, run_online
from hypothesis import HealthCheck, given, settings
from precision_cases import S, T, expected, histories, mismatches, plan

H = 3600 * S


def test_tiny_amounts_after_huge_ones():
    """Amounts of 1e9..1e12 over the first hours, then 1e-6..1e-3 ones: a 1h window holding
    only tiny amounts sums to their exact sum, whatever came before in the entity's history."""
    rng = random.Random(7)
    events = [dict(id=1, ts=T + j * S, amount=rng.choice([1e9, 3e11, 1e12, 7e10]) * rng.random())
              for j in range(0, 3 * H // S, 97)]
    tiny = [rng.choice([1e-6, 3e-5, 1e-3]) * rng.random() for _ in range(40)]
    events += [dict(id=1, ts=T + 4 * H + j * S, amount=x) for j, x in enumerate(tiny)]
    p = compile_features("amount: float64", """
    tx_sum_1h: float64 = sum(ev.amount, 1h)
    tx_mean_1h: float64? = mean(ev.amount, 1h)""")
    spine = [dict(id=1, ts=T + 4 * H + k * S) for k in (1, 10, 25, 40)]
    want_sum = [sum_exact(tiny[:k]) for k in (1, 10, 25, 40)]
    check(run_online(p, events, spine, batches=(None, 1, 7)),
          {"tx_sum_1h": want_sum, "tx_mean_1h": [s / k for s, k in zip(want_sum, (1, 10, 25, 40))]})


def sum_exact(xs):
    from fractions import Fraction

    return float(sum(map(Fraction, xs), Fraction(0)))


def test_float32_sums_do_not_depend_on_other_entities():
    """Item 7: 0.1f, then 2^24 one second later; item 10: 3e38 and an older -7.25.  Item 7's
    sum is 0.1f + 2^24 in float64 (0.100000001490116... + 16777216), whatever item 10 holds."""
    p = compile_features("f32: float32", """
    s: float64 = sum(ev.f32)
    s1h: float64 = sum(ev.f32, 1h)""")
    events = [dict(id=10, ts=T, f32=3e38), dict(id=10, ts=T - S, f32=-7.25), dict(id=7, ts=T, f32=0.1),
              dict(id=7, ts=T + S, f32=2.0**24)]
    tenth = 0.10000000149011612  # float32(0.1), exactly
    check(run_online(p, events, [dict(id=7, ts=T + 2 * S)]), {"s": [2.0**24 + tenth], "s1h": [2.0**24 + tenth]})


def test_sum_across_hundreds_of_orders_of_magnitude():
    """1e300 then 1e-300: a window holding only the 1e-300 sums to 1e-300 (online gave 0.0);
    the lifetime sum is 1e300."""
    p = compile_features("amount: float64", """
    s: float64 = sum(ev.amount, 1h)
    life: float64 = sum(ev.amount)""")
    events = [dict(id=1, ts=T, amount=1e300), dict(id=1, ts=T + 2 * H, amount=1e-300)]
    check(run_online(p, events, [dict(id=1, ts=T + 2 * H + 1)]), {"s": [1e-300], "life": [1e300]})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_windows_are_exact_whatever_came_before(case):
    events, spine = case
    want = expected(events, spine)
    bad = [line for engine, rows in run_online(PLAN, events, spine, batches=(None, 1, 4)).items()
           for line in mismatches(engine, rows, want)]
    assert not bad, "\n".join(bad[:20])


PLAN = plan()


def test_ordinary_amounts_never_take_the_exact_path(monkeypatch):
    """Positive amounts of similar size, windows empty or not: every answer comes from the
    prefix structures (the exact fallback is for hostile windows only)."""
    import astra.online.single as single
    import astra.online.view as view

    def refuse(xs):
        raise AssertionError(f"exact fallback taken for {xs!r}")

    monkeypatch.setattr(view, "exact_sum", refuse)
    monkeypatch.setattr(single, "exact_sum", refuse)
    rng = random.Random(3)
    p = compile_features("amount: float64", """
    s: float64 = sum(ev.amount, 1h)
    life: float64 = sum(ev.amount)""")
    events = [dict(id=rng.randint(1, 5), ts=T + rng.randint(0, 5 * H), amount=rng.uniform(1, 500)) for _ in range(300)]
    spine = [dict(id=rng.randint(1, 7), ts=T + rng.randint(0, 7 * H)) for _ in range(40)]
    run_online(p, events, spine, batches=(None, 1))


def test_a_store_saved_without_the_error_bounds_loads_and_answers(tmp_path):
    """A store saved by a version without the `sea` prefixes loads, derives them again and
    answers the exact sums (here forty values of 1e-300 after 1e300: 4e-299)."""
    import json

    from agg_engines import online, push_all

    from astra.online import Store

    p = compile_features("amount: float64", """
    s: float64 = sum(ev.amount, 1h)""")
    events = [dict(id=1, ts=T, amount=1e300)] + [dict(id=1, ts=T + 2 * H + j, amount=1e-300) for j in range(40)]
    push_all(p, events).save(tmp_path / "store")
    manifest = json.loads((tmp_path / "store" / "manifest.json").read_text())
    for table in manifest["tables"]:
        table["arrays"] = {k: v for k, v in table["arrays"].items() if not k.startswith("pos:sea:")}
    (tmp_path / "store" / "manifest.json").write_text(json.dumps(manifest))
    got = online(Store.load(tmp_path / "store", p), p, [dict(id=1, ts=T + 2 * H + 40)])
    check(got, {"s": [4e-299]})


def test_lifetime_variance_of_equal_values_across_eviction_is_zero():
    """Sixty values of 0.1, one a second, queried after most were evicted: the lifetime
    variance is exactly 0 (the evicted values' moments gave 7e-35)."""
    p = compile_features("x: float64", """
    v: float64? = variance(ev.x)
    v10: float64? = variance(ev.x, 10s)""")  # a window: the table evicts what is older
    events = [dict(id=1, ts=T + j * S, x=0.1) for j in range(60)]
    check(run_online(p, events, [dict(id=1, ts=T + 61 * S)], batches=()), {"v": [0.0], "v10": [0.0]})
