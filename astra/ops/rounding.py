"""`round(x, n)` on whole arrays, correctly rounded like Python's `round`.

The result is the double nearest to the float's exact value rounded to `n` decimals, half to
even on exact ties.  Scaling by `10**n` and rounding the product (numpy's and Polars' way) is
wrong near ties: 0.35 is stored as 0.34999999999999997779..., so it rounds to 0.3, but
`0.35 * 10` is exactly 3.5 in floating point and rounds to 4.

The fast path scales and rounds the product half to even; the rows whose product lies within
its rounding error of a tie are then settled with that exact error (Dekker's error-free
product), so no row needs Python.  Only rows whose scaled value reaches 2**52 (a huge
`x * 10**n` that is not an integer already) and `n > 22` (where `10**n` is not a double) fall
back to Python's `round`, one row at a time.
"""

from __future__ import annotations

import numpy as np

_EXACT_POWERS = 22  # 10**22 is the largest power of ten that a double holds exactly
_BIG = 2.0**52  # from here on every double is an integer
_SPLIT = 134217729.0  # 2**27 + 1: Veltkamp's splitter for 53-bit doubles


def _split(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """a = hi + lo exactly, each half with at most 26 significant bits."""
    c = _SPLIT * a
    hi = c - (c - a)
    return hi, a - hi


def _product_error(a: np.ndarray, b: float, product: np.ndarray) -> np.ndarray:
    """The exact `a * b - product` for `product = fl(a * b)` (Dekker's two-product, no fma)."""
    a_hi, a_lo = _split(a)
    b_hi, b_lo = _split(np.float64(b))
    return ((a_hi * b_hi - product) + a_hi * b_lo + a_lo * b_hi) + a_lo * b_lo


def round_half_even(x: np.ndarray, digits: int) -> np.ndarray:
    """`round(v, digits)` of every value (float64 result; `digits >= 0`), as Python rounds it.

    NaN and infinities come back unchanged, and so does every value of magnitude 2**52 or more
    (it is an integer already)."""
    x = np.asarray(x, dtype=np.float64)
    if digits > _EXACT_POWERS:
        return _python_round(x, digits, np.isfinite(x) & (np.abs(x) < _BIG))
    scale = 10.0**digits
    a = np.abs(x)
    small = a < _BIG  # False for NaN, inf and values that are integers already
    with np.errstate(over="ignore", invalid="ignore"):
        a = np.where(small, a, 0.0)
        y = a * scale
        k = np.rint(y)  # half to even on the rounded product: right unless y lies near a tie
        # the product's rounding error is at most ulp(y) / 2 <= y * 2**-53, so only rows this
        # close to a .5 can round the other way; settle them exactly
        near = np.flatnonzero(np.abs((y - np.floor(y)) - 0.5) <= y * 2.0**-50)
        if len(near):
            k[near] = _settle(a[near], scale, y[near])
        out = np.where(small, np.copysign(k / scale, x), x)
    return _python_round(out, digits, small & (y >= _BIG), x)


def _settle(a: np.ndarray, scale: float, y: np.ndarray) -> np.ndarray:
    """round(a * scale) half to even from the exact product, for `y = fl(a * scale) < 2**52`."""
    error = _product_error(a, scale, y)  # a * scale == y + error exactly
    low = np.floor(y)
    # the sign of the exact (a * scale - (low + 0.5)): y - half is exact wherever the two are
    # close (Sterbenz), and where they are not, |y - half| dwarfs |error|
    above = (y - (low + 0.5)) + error
    odd = np.fmod(low, 2.0) == 1.0
    return low + ((above > 0) | ((above == 0) & odd))


def _python_round(out: np.ndarray, digits: int, rows: np.ndarray, x: np.ndarray | None = None) -> np.ndarray:
    """`out` with Python's `round` applied to `x` at `rows` (a rare path: huge scaled values)."""
    x = out if x is None else x
    picked = np.flatnonzero(rows)
    if len(picked):
        out = out.copy()
        for i in picked.tolist():
            out[i] = round(float(x[i]), digits)
    return out
