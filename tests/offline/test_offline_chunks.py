"""The sorted index's building blocks: time offsets on a coarse grid keep every comparison, and
chunks cover every row and query once without splitting an entity."""

from __future__ import annotations

import numpy as np
import polars as pl
from hypothesis import given
from hypothesis import strategies as st

from astra.offline.keys import KeySpace
from astra.offline.sorted_source import SortedSource
from astra.offline.windows import EventIndex

grid = st.sampled_from([1, 7, 1_000_000])
times = st.lists(st.integers(-50, 50), min_size=1, max_size=30)


@given(grid, times, times, st.lists(st.integers(0, 60), min_size=1, max_size=3))
def test_offsets_on_the_common_grid_keep_every_comparison(step, rows, queries, widths) -> None:
    rows, queries = np.array(rows) * step, np.array(queries) * step
    widths = [w * step for w in widths]
    ks = KeySpace([np.zeros(1, np.int64)], rows, queries, widths)
    spread = np.concatenate([rows - ks.t0, queries - ks.t0, widths])
    if spread.any():  # the grid found is at least as coarse as the one the data is on
        assert ks.step % step == 0
    r, q = ks.offset(rows)[:, None], ks.offset(queries)[None, :]
    assert ((rows[:, None] < queries[None, :]) == (r < q)).all()
    for w in widths:
        start = ks.start_offset(queries - w)[None, :]
        assert ((rows[:, None] >= (queries - w)[None, :]) == (r >= start)).all()
    gaps = rows[:, None] - rows[None, :]
    assert (ks.duration(r - r.T) == gaps).all()


@given(grid, times, times, st.lists(st.integers(0, 60), min_size=1, max_size=3), st.booleans(), st.randoms())
def test_window_starts_bound_exactly_the_rows_of_each_window(step, rows, queries, widths, ranked, rnd) -> None:
    """Keys in [window_starts, query key) are the rows of the query's entity with time in
    [t - w, t): on the grid, off it (a width the key space was not built for), and with times
    replaced by ranks (ids too wide to sit beside them)."""
    rows, queries = np.array(rows) * step, np.array(queries) * step
    widths = [w * step for w in widths]
    base = (1 << 62) if ranked else 0  # 63-bit ids: times (and then ids) become ranks
    r_ids = np.array([base + rnd.randrange(3) for _ in rows], dtype=np.int64)
    q_ids = np.array([base + rnd.randrange(3) for _ in queries], dtype=np.int64)
    ks = KeySpace([r_ids, q_ids], rows, queries, widths)
    assert (ks.t_uniq is not None) == ranked
    r_keys, q_keys = ks.pack(r_ids, rows)[:, None], ks.pack(q_ids, queries)
    for w in [None, *widths, widths[0] + 1, 3 * step + 2]:
        got = (r_keys >= ks.window_starts(q_keys, w, queries)[None, :]) & (r_keys < q_keys[None, :])
        want = (r_ids[:, None] == q_ids[None, :]) & (rows[:, None] < queries[None, :])
        if w is not None:
            want &= rows[:, None] >= (queries - w)[None, :]
        assert (got == want).all(), w


@given(st.lists(st.integers(0, 6), min_size=1, max_size=60), st.lists(st.integers(0, 8), max_size=40),
       st.integers(1, 9), st.sampled_from([1, 1 << 21]), st.sampled_from([1, 7, 1 << 20]), st.sampled_from([1, 2]),
       st.integers(1, 4))
def test_chunks_cover_rows_and_queries_once_and_keep_entities_whole(ids, q_ids, rows_per_chunk, spread, slice_rows,
                                                                    threads, pieces) -> None:
    """`spread` widens the ids past the chunk-number lookup table (a binary search then, and
    no table of last query times: every row is kept); the rows are partitioned by slices of
    `slice_rows` on `threads` threads, and their times and ids come in `pieces` and `pieces + 1`
    consecutive arrays (columns' chunks, cut in different places).  A chunk holds exactly the
    rows some query sees: its entities' rows before their last query time."""
    ids, q_ids = np.array(ids, dtype=np.int64) * spread, np.array(q_ids, dtype=np.int64) * spread
    times = np.arange(ids.size, dtype=np.int64)[::-1] * 10  # file order is not time order
    q_times = np.arange(q_ids.size, dtype=np.int64) * 97 % 700
    source = SortedSource(pl.DataFrame({"x": np.arange(ids.size)}), np.array_split(ids, pieces + 1),
                          np.array_split(times, pieces),
                          q_ids.copy(), q_times, rows_per_chunk, threads=threads, slice_rows=slice_rows)
    seen_rows, seen_queries, owner = [], [], {}
    for i, (chunk, queries) in enumerate(source.chunks):
        index = EventIndex(source, chunk, queries)
        assert (np.diff(index.keys) >= 0).all()
        frame_rows = index.order.astype(np.int64)
        # sorted by (entity, time), file order on ties: here times fall as rows rise
        assert np.lexsort((frame_rows, times[frame_rows], ids[frame_rows])).tolist() == list(range(frame_rows.size))
        for e in set(ids[frame_rows].tolist()) | set(q_ids[source.q_order[queries]].tolist()):
            assert owner.setdefault(e, i) == i  # an entity's rows and queries stay in one chunk
        seen_rows += frame_rows.tolist()
        seen_queries += source.q_order[queries].tolist()
    assert sorted(seen_rows) == sorted(set(seen_rows))
    # every query is answered, except those of chunks left out because they hold no query
    assert sorted(seen_queries) == list(range(q_ids.size))
    last = {e: max(t for q, t in zip(q_ids.tolist(), q_times.tolist()) if q == e) for e in set(q_ids.tolist())}
    seen = {r for r in range(ids.size) if ids[r] in last and times[r] < last[ids[r]]}
    if max(ids.max(), q_ids.max(initial=0)) >= 1 << 22:  # no table of last query times: rows are kept
        seen = {r for r in range(ids.size) if ids[r] in last}
        assert seen <= set(seen_rows)
        return
    assert set(seen_rows) == seen


def _source(values: pl.Series) -> SortedSource:
    n = values.len()
    return SortedSource(pl.DataFrame({"c": values}), np.zeros(n, np.int64), np.arange(n, dtype=np.int64),
                        np.zeros(1, np.int64), np.array([100]), 1 << 20)


def test_codes_count_from_the_smallest_value_and_keep_zero_for_null() -> None:
    """Codes are value - min + 1 (0: null), exact even at the ends of int64; a range of 2**16
    values or more has no codes, and strings or floats never do."""
    low = -(2**63)
    got = _source(pl.Series([low, None, low + 5, low, None, low + 1], dtype=pl.Int64)).codes("c")
    assert got.dtype == np.uint16 and got.tolist() == [1, 0, 6, 1, 0, 2]
    assert _source(pl.Series([2**63 - 1, 2**63 - 1 - 65_534], dtype=pl.Int64)).codes("c").tolist() == [65_535, 1]
    assert _source(pl.Series([2**63 - 1, 2**63 - 1 - 65_535], dtype=pl.Int64)).codes("c") is None
    assert _source(pl.Series(["a", "b"])).codes("c") is None
    assert _source(pl.Series([1.0, 2.0])).codes("c") is None
    assert _source(pl.Series([None, None], dtype=pl.Int64)).codes("c").tolist() == [0, 0]
