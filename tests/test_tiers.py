"""Tier covers: every instant of a range in exactly one piece, each piece whole buckets of its
tier inside one query bucket, and each the coarsest that fits there."""

from bisect import bisect_right
from datetime import UTC, datetime, timedelta
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from api.core import zones
from api.core.buckets import floor_to
from api.core.tiers import FINEST, RAW, TIERS, cover
from api.core.windows import BUCKET_WIDTHS

BASE = datetime(2026, 11, 2, tzinfo=UTC)
_MINUTE = timedelta(minutes=1)
instants = st.builds(
    lambda minutes, micros: BASE + minutes * _MINUTE + timedelta(microseconds=micros),
    st.integers(-3 * 1440, 40 * 1440),
    st.sampled_from([0, 0, 1, 999_999]),
)
# Zones whose wall clock is off the hour, or changes in the instants drawn.
_ZONES = ["UTC", "Asia/Kolkata", "Asia/Kathmandu", "Pacific/Chatham", "America/New_York"]


@st.composite
def windows(draw) -> tuple[list[datetime], datetime, datetime]:
    """Query bucket boundaries of a zone and width, and a range ``[start, end)`` within them."""
    a, b = draw(instants), draw(instants)
    start, end = min(a, b), max(a, b) + timedelta(microseconds=1)
    zone = zones.zone_named(draw(st.sampled_from(_ZONES)))
    width = BUCKET_WIDTHS[draw(st.sampled_from(list(BUCKET_WIDTHS)))]
    boundaries = zones.between(start, end, width, zone, limit=20_000)
    assert boundaries is not None
    return boundaries, start, end


def _pieces(boundaries, start, end):
    """(piece, low, high) of each span of the cover."""
    return [
        (piece, low, high)
        for piece, spans in cover(boundaries, start, end).spans.items()
        for low, high in spans
    ]


@given(windows())
def test_pieces_tile_the_range(window):
    _, start, end = window
    covered = start
    for _, low, high in sorted(_pieces(*window), key=lambda p: p[1]):
        assert low == covered < high, "no gap, no overlap, nothing empty"
        covered = high
    assert covered == end


@given(windows(), st.lists(instants, max_size=30))
def test_the_rolled_up_spans_hold_exactly_what_the_tiers_hold(window, times):
    """Queued events are read over Cover.rolled_up: an instant is in it exactly when a tier's
    span holds it (not a raw one), and its spans are ascending, disjoint and not adjacent."""
    found = cover(*window)
    rolled_up = found.rolled_up()
    for (_, high), (low, _) in pairwise(rolled_up):
        assert high < low
    tier_spans = [span for tier in TIERS for span in found.spans[tier]]
    for moment in [*times, *(low for low, _ in tier_spans), *(high for _, high in tier_spans)]:
        in_tier = any(low <= moment < high for low, high in tier_spans)
        assert any(low <= moment < high for low, high in rolled_up) == in_tier


def _rows(piece, low, high):
    """The rollup buckets a tier's span reads."""
    width = TIERS[piece]
    assert floor_to(low, width) == low and floor_to(high, width) == high
    return [(low + n * width, low + (n + 1) * width) for n in range((high - low) // width)]


def _clipped_bucket(boundaries, start, end, moment):
    """The part of the query bucket holding ``moment`` that the range counts."""
    position = bisect_right(boundaries, moment)
    assert 0 < position < len(boundaries), f"{moment} is in no bucket"
    return max(boundaries[position - 1], start), min(boundaries[position], end)


def _coarser(piece):
    names = list(TIERS)
    return TIERS[names[names.index(piece) + 1]] if piece != names[-1] else None


@settings(deadline=None)
@given(windows())
def test_each_rollup_row_is_inside_one_query_bucket_and_the_coarsest_that_fits(window):
    boundaries, start, end = window
    for piece, low, high in _pieces(*window):
        if piece == RAW:
            # Raw events only where no 5-minute row fits in the query bucket.
            row = floor_to(low, FINEST)
            while row < high:
                bucket_low, bucket_high = _clipped_bucket(boundaries, start, end, max(row, low))
                assert not (bucket_low <= row and row + FINEST <= bucket_high), "a row fits"
                row += FINEST
            continue
        for row_start, row_end in _rows(piece, low, high):
            bucket_low, bucket_high = _clipped_bucket(boundaries, start, end, row_start)
            assert bucket_low <= row_start and row_end <= bucket_high, "inside one bucket"
            coarser = _coarser(piece)
            if coarser is not None:
                outer = floor_to(row_start, coarser)
                assert not (bucket_low <= outer and outer + coarser <= bucket_high), "coarsest"


def test_a_month_reads_weeks_in_the_middle_and_finer_tiers_towards_the_edges():
    day, hour = timedelta(days=1), timedelta(hours=1)
    start = BASE + day + timedelta(hours=7, minutes=12)  # a Tuesday; BASE is a Monday
    end = BASE + 30 * day + timedelta(hours=13, minutes=7, seconds=3)  # a Wednesday
    tuesday, wednesday, last_monday = BASE + day, BASE + 2 * day, BASE + 28 * day
    assert cover((start, end), start, end).spans == {
        RAW: (
            (start, start + timedelta(minutes=3)),
            (end - timedelta(minutes=2, seconds=3), end),
        ),
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
        "7d": ((BASE + 7 * day, last_monday),),
    }


def test_days_in_kolkata_read_hours_and_six_hours_inside_each_local_day():
    """+05:30: a local day is 18:30Z to 18:30Z: half an hour of 5-minute rows at each end,
    hours up to 00:00Z and from 18:00Z, three 6-hour rows between; never raw events."""
    zone = zones.zone_named("Asia/Kolkata")
    start, end = BASE - timedelta(hours=5, minutes=30), BASE + 3 * timedelta(days=1)
    end -= timedelta(hours=5, minutes=30)
    boundaries = zones.between(start, end, timedelta(days=1), zone, limit=10)
    assert boundaries is not None and len(boundaries) == 4
    spans = cover(boundaries, start, end).spans
    assert spans[RAW] == () and spans["1d"] == () and spans["7d"] == ()
    assert len(spans["6h"]) == 3 and all(
        high - low == timedelta(hours=18) for low, high in spans["6h"]
    )
    assert len(spans["5m"]) == 4  # the first and last half hours, and each day change's hour
