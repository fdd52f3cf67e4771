"""Tier covers: every instant of a range in exactly one piece, each piece whole buckets."""

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from api.core.buckets import floor_to
from api.core.tiers import COARSEST, FINEST, TIERS, cover

BASE = datetime(2026, 11, 2, tzinfo=UTC)
_MINUTE = timedelta(minutes=1)
instants = st.builds(
    lambda minutes, micros: BASE + minutes * _MINUTE + timedelta(microseconds=micros),
    st.integers(-3 * 1440, 40 * 1440),
    st.sampled_from([0, 0, 1, 999_999]),
)
coarsest = st.sampled_from([*TIERS.values(), timedelta(hours=6), timedelta(days=7)])


def _pieces(start, end, limit):
    """(first instant, end) of each nonempty piece, with its tier (None: raw)."""
    found = cover(start, end, limit)
    pieces = [(None, span) for span in found.raw if span[0] < span[1]]
    for name, spans in found.tiers.items():
        width = TIERS[name]
        for low, high in spans:
            if low < high:
                assert floor_to(low, width) == low and floor_to(high, width) == high
                assert width <= max(limit, FINEST)
                pieces.append((name, (low, high)))
    return pieces


@given(instants, instants, coarsest)
def test_pieces_tile_the_range(a, b, limit):
    start, end = min(a, b), max(a, b)
    spans = sorted(span for _, span in _pieces(start, end, limit))
    covered = start
    for low, high in spans:
        assert low == covered, "no gap, no overlap"
        covered = high
    assert covered == end


@given(instants, instants)
def test_raw_edges_are_shorter_than_a_rollup_bucket(a, b):
    start, end = min(a, b), max(a, b)
    for tier, (low, high) in _pieces(start, end, TIERS["1d"]):
        if tier is None and end - start >= 2 * FINEST:
            assert high - low < FINEST


def test_a_month_reads_weeks_in_the_middle_and_finer_tiers_towards_the_edges():
    day, hour = timedelta(days=1), timedelta(hours=1)
    start = BASE + day + timedelta(hours=7, minutes=12)  # a Tuesday; BASE is a Monday
    end = BASE + 30 * day + timedelta(hours=13, minutes=7, seconds=3)  # a Wednesday
    found = cover(start, end, COARSEST)
    assert found.raw == (
        (start, start + timedelta(minutes=3)),
        (end - timedelta(minutes=2, seconds=3), end),
    )
    tuesday, wednesday, last_monday = BASE + day, BASE + 2 * day, BASE + 28 * day
    assert found.tiers == {
        "5m": (
            (tuesday + 7 * hour + timedelta(minutes=15), tuesday + 8 * hour),
            (BASE + 30 * day + 13 * hour, end - timedelta(minutes=2, seconds=3)),
        ),
        "1h": (
            (tuesday + 8 * hour, tuesday + 12 * hour),
            (BASE + 30 * day + 12 * hour, BASE + 30 * day + 13 * hour),
        ),
        "6h": ((tuesday + 12 * hour, wednesday), (BASE + 30 * day, BASE + 30 * day + 12 * hour)),
        "1d": ((wednesday, BASE + 7 * day), (last_monday, BASE + 30 * day)),
        "7d": ((BASE + 7 * day, last_monday), (last_monday, last_monday)),
    }
