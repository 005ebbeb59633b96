"""The offline engine's float sums, means and variances are exact to 1e-9 of each window's own
values (docs/semantics.md, "Floating point"); see tests/precision_cases.py for the oracle."""

from __future__ import annotations

import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agg_engines import check, compile_features, run_offline
from precision_cases import S, T, expected, histories, mismatches, plan

H = 3600 * S


def test_variance_after_much_larger_values():
    """1e12 earlier, then 1e-3, 2e-3, 3e-3 at T + 2h (+0, 1, 2 µs).  At T + 2h + 3 the 1h window
    holds all three: mean 2e-3, deviations -1e-3, 0, 1e-3, variance 2e-6 / 2 = 1e-6.  At
    T + 3h + 2 it holds 3e-3 alone (no variance); at T + 3h + 1, 2e-3 and 3e-3: variance 5e-7."""
    p = compile_features("amount: float64", """
    v: float64? = variance(ev.amount, 1h)
    sd: float64? = stddev(ev.amount, 1h)
    s: float64 = sum(ev.amount, 1h)""")
    events = [dict(id=1, ts=T, amount=1e12), dict(id=1, ts=T + 2 * H, amount=1e-3),
              dict(id=1, ts=T + 2 * H + 1, amount=2e-3), dict(id=1, ts=T + 2 * H + 2, amount=3e-3)]
    spine = [dict(id=1, ts=T + 2 * H + 3), dict(id=1, ts=T + 3 * H + 2), dict(id=1, ts=T + 3 * H + 1)]
    check({"offline": run_offline(p, events, spine)}, {
        "v": [1e-6, None, 5e-7], "sd": [1e-3, None, 5e-7 ** 0.5], "s": [6e-3, 3e-3, 5e-3]})


def test_sum_across_hundreds_of_orders_of_magnitude():
    """1e300 then 1e-300 in one entity: a window holding only the 1e-300 sums to 1e-300, and the
    lifetime to 1e300 (the exactly rounded 1e300 + 1e-300)."""
    p = compile_features("amount: float64", """
    s: float64 = sum(ev.amount, 1h)
    life: float64 = sum(ev.amount)
    m: float64? = mean(ev.amount, 1h)""")
    events = [dict(id=1, ts=T, amount=1e300), dict(id=1, ts=T + 2 * H, amount=1e-300)]
    check({"offline": run_offline(p, events, [dict(id=1, ts=T + 2 * H + 1)])},
          {"s": [1e-300], "life": [1e300], "m": [1e-300]})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_windows_are_exact_whatever_came_before(case):
    events, spine = case
    bad = mismatches("offline", run_offline(PLAN, events, spine), expected(events, spine))
    assert not bad, "\n".join(bad)


PLAN = plan()


def test_ordinary_amounts_never_take_the_exact_path(monkeypatch):
    """Positive amounts of similar size, windows empty or not: every sum comes from the prefix
    sums (the exact fallback is for hostile windows only)."""
    import random

    from astra.ops import exact

    def refuse(xs):
        raise AssertionError(f"exact fallback taken for {xs!r}")

    monkeypatch.setattr(exact, "exact_sum", refuse)
    rng = random.Random(3)
    p = compile_features("amount: float64", """
    s: float64 = sum(ev.amount, 1h)
    life: float64 = sum(ev.amount)""")
    events = [dict(id=rng.randint(1, 5), ts=T + rng.randint(0, 5 * H), amount=rng.uniform(1, 500)) for _ in range(300)]
    spine = [dict(id=rng.randint(1, 7), ts=T + rng.randint(0, 7 * H)) for _ in range(40)]
    run_offline(p, events, spine)
