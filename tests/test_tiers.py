"""Tier covers: every instant of a range in exactly one piece, each piece whole buckets."""

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from api.buckets import floor_to
from api.tiers import FINEST, TIERS, cover

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


def test_a_month_reads_days_in_the_middle():
    start = BASE + timedelta(hours=6)
    end = BASE + timedelta(days=30, hours=6, minutes=7, seconds=3)
    found = cover(start, end, TIERS["1d"])
    assert found.raw == ((start, start), (end - timedelta(minutes=2, seconds=3), end))
    assert found.tiers["1h"] == (
        (start, BASE + timedelta(days=1)),
        (BASE + timedelta(days=30), BASE + timedelta(days=30, hours=6)),
    )
    assert found.tiers["1d"][0] == (BASE + timedelta(days=1), BASE + timedelta(days=30))
    assert found.tiers["5m"][1] == (
        BASE + timedelta(days=30, hours=6),
        end - timedelta(minutes=2, seconds=3),
    )
