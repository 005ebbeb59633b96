"""Float sums of the online store: running-sum prefixes, the error bounds of their windows, and
the exact fallbacks.

A table keeps, per float-sum input and arena position, only the running sum `shi` of its
segment, each step rounded once: shi_k = fl(shi_{k-1} + x_k), from 0 at the segment's start
(`run_sums` computes it in that order whatever the batch, so an entity's prefixes depend on its
own rows alone).  A window (a, b] then differs from its exact sum by the rounding errors e_k of
its own steps, |e_k| <= u |shi_k|, and by the final subtraction.  Per entity slot the table
keeps two bounds of that error: `shm`, the largest |shi| of the segment (so the window's errors
are at most its row count times u * shm), and `sem`, the largest |E_k| of the running sums of
the errors themselves (E_b - E_a is at most 2 * sem, whatever the row count), with `slast`, the
error prefix at the segment's end, so that appended rows continue it (NaN: not known, after rows
merged before older ones; `sem` then grows by their own errors).  A window is answered from the
prefixes when the smaller bound is below `astra.ops.exact.TOLERANCE` of the answer; otherwise
its rows are summed exactly (`astra.ops.exact.exact_sum`).  Eviction sums the retained rows of
the segments it cuts again from their start (no rebasing error), and folds the evicted rows'
double-double sum into a per-slot base, exactly where its fast fold could lose digits.  A NaN
or infinite bound (overflowed sums, NaN values) says "sum again", never "fine".

Every bound takes NumPy arrays or Python floats alike, so the batch and single-entity plans take
the same decisions and return the same bits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from astra.online.arrays import two_sum_err
from astra.ops.exact import exact_sum
from astra.ops.summation import compensated_runs

if TYPE_CHECKING:
    from astra.online.table import Table

U = 2.0 ** -53  # float64's unit roundoff
SLACK = 2.0 ** -20  # covers the rounding of the bound's own products and of the error prefixes
FOLD_TOLERANCE = 1e-13  # an evicted base less accurate than this (relative) is folded exactly


def run_sums(x: np.ndarray, gstart: np.ndarray, g: np.ndarray,
             base: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the running sum of its group's x up to it, continued from the group's `base`
    (0 when None) one rounded step a row, and the running sum of those steps' exact rounding
    errors (from 0); each group (contiguous, starting at `gstart`) summed on its own."""
    m = len(gstart)
    if m == 1:  # one group (a push of one entity's rows): the same sums, directly
        b0 = 0.0 if base is None else float(base[0])
        p = np.cumsum(np.concatenate(([b0], x)))[1:]
        e = np.empty_like(p)
        if len(p):
            e[0] = two_sum_err(b0, x[0], p[0])
            e[1:] = two_sum_err(p[:-1], x[1:], p[1:])
        return p, np.cumsum(e)
    if base is None or not base.any():
        p, e = compensated_runs(x, gstart)
        at = np.arange(len(x)) + g + 1  # `compensated_runs` puts a 0 before each run
        return p[at], e[at]
    # each group's base as its first term (adding it to 0 is exact)
    xb = np.empty(len(x) + m)
    first = gstart + np.arange(m)
    xb[first] = base
    rest = np.ones(len(xb), bool)
    rest[first] = False
    xb[rest] = x
    p, e = compensated_runs(xb, first)
    at = np.arange(len(x)) + 2 * g + 2
    return p[at], e[at]


def _least(a, b):
    """The smaller of two bounds, NaN when either is (NumPy arrays or floats)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.minimum(a, b)
    if a != a or b != b:
        return float("nan")
    return b if b < a else a


def window_bound(rows, shm, sem, out):
    """Error bound of a window sum fl(shi_b - shi_a) = `out` over `rows` rows of one segment whose
    |shi| are at most `shm` and whose error prefixes are at most `sem` in magnitude."""
    return _least(U * rows * shm, 2.0 * sem) * (1 + SLACK) + 2 * U * abs(out)


def lifetime_bound(rows, shm, sem, bl, bserr, s, out):
    """Error bound of a lifetime sum `out` = s + (bl + err), s = fl(shi_b + bh): the retained
    rows' prefix (from the segment's start: its error prefix alone, at most `sem`) plus the
    evicted rows' base (bh, bl), itself within `bserr` of their exact sum."""
    return _least(U * rows * shm, sem) * (1 + SLACK) + bserr + 2 * U * (abs(bl) + abs(s) + abs(out))


def derive(tb: Table, i: int, slots: np.ndarray, rows: np.ndarray, x: np.ndarray, g: np.ndarray,
           gstart: np.ndarray, span: np.ndarray, p: np.ndarray, prev: np.ndarray, old_n: np.ndarray | None) -> None:
    """The float-sum prefixes of input i at arena positions `rows` (included values x, 0 elsewhere;
    groups g starting at `gstart`, `span` rows each, from relative position p of segments `slots`
    on, whose previous position is `prev`), continued from the prefix before p; and the slots'
    bounds (`shm`, `sem`, `slast`).
    `old_n`: the segments' lengths before the rows were merged in (None: rebuilt from p = 0)."""
    P, S = tb.pos, tb.slot
    has_prev = p > 0
    base = np.where(has_prev, P[f"shi:{i}"][prev], 0.0)
    hi, err = run_sums(x, gstart, g, base)
    P[f"shi:{i}"][rows] = hi
    some = span > 0
    cut = gstart[some]
    hmax, emax, elast = np.zeros(len(slots)), np.zeros(len(slots)), np.zeros(len(slots))
    if some.any():
        hmax[some] = np.maximum.reduceat(np.abs(hi), cut)
        emax[some] = np.maximum.reduceat(np.abs(err), cut)
        elast[some] = err[gstart[some] + span[some] - 1]
    shm, sem, slast = S[f"shm:{i}"], S[f"sem:{i}"], S[f"slast:{i}"]
    last = slast[slots]
    # appended rows continue the known error prefix of the segment's end; rows merged before
    # older ones (or after an end not known) only add their own errors' magnitude to the bound
    appended = p == old_n if old_n is not None else np.zeros(len(slots), bool)
    known = ~has_prev | (appended & ~np.isnan(last))
    lead = np.where(known & has_prev, last, 0.0)
    cmax = np.zeros(len(slots))
    if some.any():
        cmax[some] = np.maximum.reduceat(np.abs(lead[g] + err), cut)
    old_shm, old_sem = shm[slots], sem[slots]
    shm[slots] = np.where(has_prev, np.maximum(old_shm, hmax), hmax)  # np.maximum keeps NaN
    sem[slots] = np.where(~has_prev, cmax, np.where(known, np.maximum(old_sem, cmax), old_sem + emax))
    slast[slots] = np.where(some, np.where(known, lead + elast, np.nan), last)


def rebuild(tb: Table, i: int, rows: np.ndarray, n: np.ndarray) -> tuple:
    """Running sums of input i over runs of rows (arena positions `rows`, `n` each) from each
    run's start, and per run: its sum, its error prefix at its end, the largest |error prefix|
    and the largest |running sum| (zeros for empty runs)."""
    m = len(n)
    gstart = np.cumsum(n) - n
    g = np.repeat(np.arange(m), n)
    x = np.where(tb.included(i, rows), tb.pos[f"v:{tb.inputs[i].column}"][rows], 0).astype(np.float64)
    hi, err = run_sums(x, gstart, g) if len(rows) else (np.zeros(0), np.zeros(0))
    some = n > 0
    h_end, e_end, emax, hmax = (np.zeros(m) for _ in range(4))
    if some.any():
        end = gstart[some] + n[some] - 1
        h_end[some], e_end[some] = hi[end], err[end]
        emax[some] = np.maximum.reduceat(np.abs(err), gstart[some])
        hmax[some] = np.maximum.reduceat(np.abs(hi), gstart[some])
    return hi, (h_end, e_end, emax, hmax)


def fold_exactly(tb: Table, i: int, sel: np.ndarray, s: np.ndarray, kk: np.ndarray,
                 h0: np.ndarray, l0: np.ndarray, emax: np.ndarray) -> None:
    """Fold the evicted rows' double-double sum (h0, l0; their error prefixes at most `emax` in
    magnitude; segments starting at `s` with `kk` rows evicted) into slots `sel`'s lifetime base,
    updating its error bound; slots where that bound would not stay far below the base are
    folded from the rows."""
    S, P = tb.slot, tb.pos
    bh, bl, bserr = S[f"bshi:{i}"][sel], S[f"bslo:{i}"][sel], S[f"bserr:{i}"][sel]
    nh = bh + h0
    nl = bl + l0 + two_sum_err(bh, h0, nh)
    with np.errstate(invalid="ignore", over="ignore"):
        # l0 is the float sum of kk exact step errors: within u * kk * emax of their exact sum
        err = bserr + 3 * U * kk * emax * (1 + SLACK) + 4 * U * (abs(bl) + abs(l0))
        bad = ~(err <= FOLD_TOLERANCE * abs(nh))
    column = tb.inputs[i].column
    for j in np.flatnonzero(bad).tolist():  # rare: values far apart in size, cancellation, inf, NaN
        rows = np.arange(s[j], s[j] + kk[j])
        vals = P[f"v:{column}"][rows][tb.included(i, rows)].astype(np.float64).tolist()
        terms = [float(bh[j]), float(bl[j]), *vals]
        total = exact_sum(terms)
        nh[j] = total
        nl[j] = exact_sum([*terms, -total]) if np.isfinite(total) else 0.0
        err[j] = bserr[j] + U * abs(nl[j])
    S[f"bshi:{i}"][sel], S[f"bslo:{i}"][sel], S[f"bserr:{i}"][sel] = nh, nl, err
