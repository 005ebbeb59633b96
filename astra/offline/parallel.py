"""Element-wise passes over a source, slice by slice, on several threads.

NumPy releases the GIL on arrays this size, so passes over a 10M-row source (packing keys,
numbering chunks, partitioning rows) split into slices of ~1M rows run on every core; each
slice's temporaries are small (8 MB of int64) and stay in cache.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor


def slices(n: int, size: int) -> list[slice]:
    """Consecutive slices of at most `size` rows covering range(n)."""
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def parallel_map(fn: Callable, items: Sequence, threads: int) -> list:
    """[fn(x) for x in items], on up to `threads` threads."""
    if threads <= 1 or len(items) <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(min(threads, len(items))) as pool:
        return list(pool.map(fn, items))
