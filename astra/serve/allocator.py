"""Allocator settings for a serve worker: a long-lived process whose memory must follow the
data it retains.

glibc serves a large block (a numpy array) with its own `mmap` only while it is above the
*dynamic* mmap threshold, and every time such a block is freed the threshold rises to its size
(up to 32 MiB).  A store's arrays are reallocated as it grows (arena growth, compaction and
eviction rebuilds copy them), so after the first few frees every array up to 32 MiB comes from
the heap instead: the old copies leave holes the heap cannot give back, and `np.zeros` on the
heap must write its zeros, so an arena's spare capacity (never written by the store) is resident
too.  A fixed threshold keeps large arrays in their own mappings (returned to the system when
freed, untouched capacity never faulted in); a fixed trim threshold and few arenas keep the small
objects' heaps compact.  `astra.offline.memory` changes these settings for a backfill and puts
glibc's defaults back afterwards, which leaves the threshold set here in place (any explicit
setting turns the dynamic one off).  Anywhere but glibc this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8
MMAP_THRESHOLD = 256 * 1024  # above: an array of 32K float64s; below: Python objects, small arrays
TRIM_THRESHOLD = 8 * 1024 * 1024  # free heap top kept for reuse before it is given back
ARENAS = 2  # the worker's threads mostly hold the GIL: more arenas only spread fragmentation


@functools.cache
def _libc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def settle() -> bool:
    """Fix the allocator's thresholds for a long-lived worker (see the module docstring) and give
    back what loading left free; whether the settings applied (False off glibc)."""
    libc = _libc()
    if libc is None:
        return False
    ok = all((libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD), libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD),
              libc.mallopt(_M_ARENA_MAX, ARENAS)))
    libc.malloc_trim(0)
    return bool(ok)


def trim() -> None:
    """Give freed heap pages back to the system (after a rebuild freed a table's old arrays)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
