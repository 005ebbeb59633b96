"""Error bounds of the online store's double-double float sums, and their exact fallbacks.

A table keeps, per float-sum input and arena position, the running sum `shi` and the running sum
`slo` of its exact rounding errors, and per entity slot `sem`, the largest |slo| of its segment.
The prefix at a position differs from the exact sum of its segment's rows by the rounding of the
error sums only, and the roundings of positions before a window are common to both of its ends,
so a window's error is bounded by its own rows' |slo| (at most its row count times `sem`), the
last roundings at its two ends, and what eviction's rebasing added (`serr` per slot).  The answer
is exact enough when that bound is below `astra.ops.exact.TOLERANCE` of it; otherwise the window's
rows are summed exactly (`astra.ops.exact.exact_sum`).  The evicted rows of a lifetime sum are
folded into a per-slot double-double base, exactly where its fast fold could lose digits.  A NaN
or infinite `sem` (overflowed sums) makes every bound of its slot say "sum again", never "fine".

Every function takes NumPy arrays or Python floats alike, so the batch and single-entity plans
take the same decisions and return the same bits.
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
SLACK = 2.0 ** -20  # covers the rounding of the bound's own products
FOLD_TOLERANCE = 1e-13  # an evicted base less accurate than this (relative) is folded exactly


def run_sums(x: np.ndarray, gstart: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the running sum of its group's x up to it and the running sum of that sum's
    exact rounding errors; each group (contiguous, starting at `gstart`) summed on its own."""
    if len(gstart) == 1:  # one group (a push of one entity's rows): the same sums, directly
        p = np.cumsum(x)
        e = np.empty_like(p)
        if len(p):
            e[0] = 0.0  # the first step adds to 0: exact
            e[1:] = two_sum_err(p[:-1], x[1:], p[1:])
        return p, np.cumsum(e)
    p, e = compensated_runs(x, gstart)
    at = np.arange(len(x)) + g + 1  # `compensated_runs` puts a 0 before each run
    return p[at], e[at]


def window_bound(rows, sem, lo_b, lo_a, serr):
    """Error bound of the window sum (hi_b - hi_a) + (lo_b - lo_a) between two prefixes of one
    segment, `rows` apart (a = 0 before the first row: lo_a zero); `sem` bounds every |slo|."""
    steps = 3 * U * (rows * sem) * (1 + SLACK)
    return steps + 2 * U * (abs(lo_b) + abs(lo_a)) + 2 * serr


def lifetime_bound(rows, sem, lo_b, serr, bl, bserr):
    """Error bound of a lifetime sum: the retained rows' prefix plus the evicted rows' base."""
    return window_bound(rows, sem, lo_b, 0.0, serr) + bserr + 2 * U * (abs(bl) + abs(lo_b))


def fold_exactly(tb: Table, i: int, sel: np.ndarray, s: np.ndarray, kk: np.ndarray, e: np.ndarray,
                 h0: np.ndarray, l0: np.ndarray) -> None:
    """Fold the evicted rows' sum (the prefix (h0, l0) at their last position `e`, segments
    starting at `s` with `kk` rows evicted) into slots `sel`'s lifetime base, updating its error
    bound; slots where that bound would not stay far below the base are folded from the rows."""
    S, P = tb.slot, tb.pos
    bh, bl, bserr = S[f"bshi:{i}"][sel], S[f"bslo:{i}"][sel], S[f"bserr:{i}"][sel]
    nh = bh + h0
    nl = bl + l0 + two_sum_err(bh, h0, nh)
    with np.errstate(invalid="ignore", over="ignore"):
        err = bserr + window_bound(kk, S[f"sem:{i}"][sel], l0, 0.0, S[f"serr:{i}"][sel]) + 4 * U * (abs(bl) + abs(l0))
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
