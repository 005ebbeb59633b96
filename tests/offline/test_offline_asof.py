"""The as-of-only path (`astra.offline.asof`) against a brute-force scan: latest row with time < t,
the later row in input order on ties, -1 when the entity has no such row."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from astra.offline.asof import latest_rows
from astra.offline.keys import sort_with_positions


def brute(ids, times, q_ids, q_times) -> list[int]:
    out = []
    for qi, qt in zip(q_ids, q_times):
        best = -1
        for i, (e, t) in enumerate(zip(ids, times)):
            if e == qi and t < qt and (best < 0 or t >= times[best]):
                best = i
        out.append(best)
    return out


# time scales: small offsets, whole "seconds" (a gcd to divide out), and huge spreads that do not
# pack next to the ids (the ranked fallback)
SCALES = st.sampled_from([1, 1_000_000, 1 << 40])


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_latest_rows_matches_brute_force(data) -> None:
    scale = data.draw(SCALES)
    wide_ids = data.draw(st.booleans())
    id_values = st.integers(0, 3) if not wide_ids else st.sampled_from([0, 5, (1 << 40) + 3])
    n = data.draw(st.integers(0, 30))
    m = data.draw(st.integers(0, 20))
    ids = np.array(data.draw(st.lists(id_values, min_size=n, max_size=n)), dtype=np.int64)
    times = np.array(data.draw(st.lists(st.integers(0, 6), min_size=n, max_size=n)), dtype=np.int64) * scale
    q_ids = np.array(data.draw(st.lists(id_values, min_size=m, max_size=m)), dtype=np.int64)
    q_times = np.array(data.draw(st.lists(st.integers(0, 7), min_size=m, max_size=m)), dtype=np.int64) * scale
    if data.draw(st.booleans()):  # off the grid: no common divisor (wide spreads then need ranks)
        times += np.array(data.draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)), dtype=np.int64)
        q_times += np.array(data.draw(st.lists(st.integers(0, 1), min_size=m, max_size=m)), dtype=np.int64)
    offset = data.draw(st.integers(-5, 5)) * 1_000_003
    got = latest_rows(ids, times + offset, q_ids, q_times + offset)
    assert got.tolist() == brute(ids.tolist(), times.tolist(), q_ids.tolist(), q_times.tolist())


def test_ties_take_the_later_row_and_exact_times_are_invisible() -> None:
    ids = np.array([1, 1, 1, 2], dtype=np.int64)
    times = np.array([10, 10, 20, 5], dtype=np.int64)
    q_ids = np.array([1, 1, 1, 2, 3], dtype=np.int64)
    q_times = np.array([10, 11, 21, 5, 100], dtype=np.int64)
    assert latest_rows(ids, times, q_ids, q_times).tolist() == [-1, 1, 2, -1, -1]


def test_ids_outside_the_rows_ids_match_nothing() -> None:
    """Query ids just below and above every row's id, with earlier rows at the range's ends."""
    ids = np.array([5, 9], dtype=np.int64)
    times = np.array([1, 1], dtype=np.int64)
    q_ids = np.array([4, 10, 5, 9, 0, 1 << 40], dtype=np.int64)
    q_times = np.full(q_ids.size, 100, dtype=np.int64)
    assert latest_rows(ids, times, q_ids, q_times).tolist() == [-1, -1, 0, 1, -1, -1]


@given(st.lists(st.integers(0, 3), max_size=40), st.booleans())
def test_sorting_with_or_without_room_for_positions_agrees(values, stable) -> None:
    keys = np.array(values, dtype=np.int64)
    wide = keys << 61  # unless all equal, a range of 62+ bits: no room for 2+ positions below, an arg-sort
    for k in (keys, wide):
        expect = np.argsort(k, kind="stable")
        sorted_keys, positions = sort_with_positions(k.copy(), stable)
        assert sorted_keys.tolist() == k[expect].tolist()
        assert sorted(positions.tolist()) == list(range(k.size))
        assert k[positions].tolist() == sorted_keys.tolist()
        if stable:
            assert positions.tolist() == expect.tolist()
