"""Hostile float histories and their exact answers, for the precision tests of both engines.

The contract (docs/semantics.md, "Floating point"): a window's `sum` and `mean` are within 1e-9
relative of the exactly rounded sum (mean: sum / n) of that window's values, and `variance` and
`stddev` within 1e-9 of the exact variance of those values, whatever came before the window in
the entity's history and whatever other entities hold.  The oracle computes with fractions."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from agg_engines import close, compile_features
from hypothesis import strategies as st

S = 1_000_000  # µs
T = 10**6 * S
WINDOW = 10 * S

FEATURES = """
    s10: float64 = sum(ev.x, 10s)
    m10: float64? = mean(ev.x, 10s)
    v10: float64? = variance(ev.x, 10s)
    d10: float64? = stddev(ev.x, 10s)
    life: float64 = sum(ev.x)
    vl: float64? = variance(ev.x)
    f10: float64 = sum(ev.f, 10s)
    fm: float64? = mean(ev.f)"""


def plan():
    return compile_features("x: float64?  f: float32?", FEATURES)


# magnitudes far apart (1e12 before 1e-3, 1e300 before 1e-300), signs, and values inexact in binary
MANTISSAS = st.sampled_from([1.0, 2.0, 3.0, 1.5, 0.1, 7.25])
EXPONENTS = st.sampled_from([-300, -6, -3, 0, 3, 9, 12, 16, 300])
FLOAT32 = st.sampled_from([0.1, 2.0**24, 3e38, -3e38, -7.25, 1e-3, 1e-30, 1.0])


@st.composite
def value(draw):
    sign = draw(st.sampled_from([1.0, -1.0, 1.0]))
    return sign * draw(MANTISSAS) * 10.0 ** draw(EXPONENTS)


@st.composite
def histories(draw):
    """Events of entities 1..3 (seconds since T in file order, often out of time order) and
    queries: each entity's history often starts with huge values far before its later windows."""
    events = []
    for entity in range(1, draw(st.integers(1, 3)) + 1):
        for _ in range(draw(st.integers(0, 14))):
            x = draw(st.one_of(st.none(), value()))
            f = draw(st.one_of(st.none(), FLOAT32))
            events.append(dict(id=entity, ts=T + draw(st.integers(0, 40)) * S + draw(st.integers(0, 2)),
                               x=x, f=None if f is None else float(np.float32(f))))
    spine = [dict(id=draw(st.integers(1, 3)), ts=T + draw(st.integers(0, 45)) * S + draw(st.integers(0, 3)))
             for _ in range(draw(st.integers(1, 6)))]
    return events, spine


def _float(q: Fraction) -> float:
    try:
        return float(q)
    except OverflowError:
        return math.inf if q > 0 else -math.inf


def _variance(xs: list[Fraction]) -> float | None:
    if len(xs) < 2:
        return None
    mean = sum(xs, Fraction(0)) / len(xs)
    return _float(sum(((x - mean) ** 2 for x in xs), Fraction(0)) / (len(xs) - 1))


def expected(events: list[dict], spine: list[dict]) -> dict[str, list]:
    """The exact answers, per feature, per query."""
    out: dict[str, list] = {k: [] for k in ("s10", "m10", "v10", "d10", "life", "vl", "f10", "fm")}
    for q in spine:
        rows = [r for r in events if r["id"] == q["id"] and r["ts"] < q["ts"]]
        win = [r for r in rows if r["ts"] >= q["ts"] - WINDOW]
        xs = [Fraction(r["x"]) for r in win if r["x"] is not None]
        fs = [Fraction(r["f"]) for r in win if r["f"] is not None]
        fl = [Fraction(r["f"]) for r in rows if r["f"] is not None]
        out["s10"].append(_float(sum(xs, Fraction(0))))
        out["m10"].append(_float(sum(xs, Fraction(0)) / len(xs)) if xs else None)
        if len(xs) >= 2:
            mean = sum(xs, Fraction(0)) / len(xs)
            var = sum(((x - mean) ** 2 for x in xs), Fraction(0)) / (len(xs) - 1)
            out["v10"].append(_float(var))
            out["d10"].append(math.sqrt(_float(var)))
        else:
            out["v10"].append(None)
            out["d10"].append(None)
        every = [Fraction(r["x"]) for r in rows if r["x"] is not None]
        out["vl"].append(_variance(every))
        out["life"].append(_float(sum((Fraction(r["x"]) for r in rows if r["x"] is not None), Fraction(0))))
        out["f10"].append(_float(sum(fs, Fraction(0))))
        out["fm"].append(_float(sum(fl, Fraction(0)) / len(fl)) if fl else None)
    return out


def mismatches(engine: str, rows: list[dict], want: dict[str, list]) -> list[str]:
    """Lines describing every answer of `rows` that is not the exact one within 1e-9."""
    bad = []
    for name, values in want.items():
        got = [r[name] for r in rows]
        for j, (g, w) in enumerate(zip(got, values)):
            if not close(g, w):
                bad.append(f"{engine}: {name}[{j}] = {g!r}, exact {w!r}")
    return bad
