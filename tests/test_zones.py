"""Wall-clock bucket boundaries (§3.1), against the oracle's reading of the zone's clock at
every UTC minute, across daylight-saving changes and :30/:45 offsets."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.core import zones
from api.core.windows import BUCKET_WIDTHS, PRESET_WIDTHS, PRESETS, WindowError, resolve_window
from testkit.oracle import US, WIDTH_US, OracleWindow, epoch_us, from_us

# Instants around offset changes of 2026 (spring forward and fall back) and ordinary days.
_CHANGES = {
    "America/New_York": ["2026-03-08T07:00:00Z", "2026-11-01T06:00:00Z"],
    "Europe/Berlin": ["2026-03-29T01:00:00Z", "2026-10-25T01:00:00Z"],
    "Pacific/Chatham": ["2026-04-04T14:00:00Z", "2026-09-26T14:00:00Z"],
    "Australia/Lord_Howe": ["2026-04-04T15:00:00Z", "2026-10-03T15:30:00Z"],
    "Asia/Kolkata": ["2026-11-02T00:00:00Z"],
    "Asia/Kathmandu": ["2026-11-02T00:00:00Z"],
    "UTC": ["2026-11-02T00:00:00Z"],
}
_MINUTE = 60 * US


@st.composite
def around_a_change(draw) -> tuple[str, datetime]:
    tz = draw(st.sampled_from(list(_CHANGES)))
    change = epoch_us(datetime.fromisoformat(draw(st.sampled_from(_CHANGES[tz]))))
    minutes = draw(st.integers(-3 * 1440, 3 * 1440))
    nudge = draw(st.sampled_from([0, 0, 1, -1, 30 * US]))
    return tz, from_us(change + minutes * _MINUTE + nudge)


def test_the_changes_listed_are_offset_changes():
    for tz, changes in _CHANGES.items():
        zone = zones.zone_named(tz)
        for text in changes:
            change = datetime.fromisoformat(text)
            before = (change - timedelta(microseconds=1)).astimezone(zone).utcoffset()
            assert (before != change.astimezone(zone).utcoffset()) == (tz in _CHANGES_ONLY)


_CHANGES_ONLY = ["America/New_York", "Europe/Berlin", "Pacific/Chatham", "Australia/Lord_Howe"]


@settings(deadline=None)
@given(
    case=around_a_change(),
    hours=st.integers(0, 80),
    bucket=st.none() | st.sampled_from(list(BUCKET_WIDTHS)),
)
def test_custom_windows_have_the_oracles_boundaries(case, hours, bucket):
    tz, start = case
    end = start + timedelta(hours=hours, microseconds=1)
    window = resolve_window(
        now=end + timedelta(days=1),
        start=start.isoformat(),
        end=end.isoformat(),
        bucket=bucket,
        tz=tz,
    )
    expected = OracleWindow.custom(start, end, bucket, tz)
    assert window.bucket == expected.bucket
    assert tuple(epoch_us(b) for b in window.boundaries) == expected.boundaries
    assert window.zone.key == tz


@settings(deadline=None)
@given(case=around_a_change(), preset=st.sampled_from(list(PRESETS)), data=st.data())
def test_presets_have_the_oracles_boundaries(case, preset, data):
    tz, as_of = case
    bucket = data.draw(st.none() | st.sampled_from(PRESET_WIDTHS[preset]))
    window = resolve_window(
        now=as_of + timedelta(days=1), range_=preset, end=as_of.isoformat(), bucket=bucket, tz=tz
    )
    expected = OracleWindow.preset(preset, as_of, bucket, tz)
    assert tuple(epoch_us(b) for b in window.boundaries) == expected.boundaries
    assert window.counted_from == window.start and window.as_of == as_of


@given(
    moment=st.datetimes(
        min_value=datetime(1970, 2, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
    bucket=st.sampled_from(list(BUCKET_WIDTHS)),
)
def test_in_utc_boundaries_are_the_epoch_aligned_multiples(moment, bucket):
    width = BUCKET_WIDTHS[bucket]
    after = next(zones.at_or_after(moment, width, zones.zone_named("UTC")))
    before = next(zones.at_or_before(moment, width, zones.zone_named("UTC")))
    origin = 4 * 86_400 * US if bucket == "7d" else 0
    for boundary in (after, before):
        assert (epoch_us(boundary) - origin) % WIDTH_US[bucket] == 0
    assert before <= moment <= after and after - before <= width


def test_a_week_of_days_in_kolkata_starts_each_day_at_18_30_utc():
    window = resolve_window(
        now=datetime(2026, 11, 27, 10, 3, tzinfo=UTC), range_="7d", bucket="1d", tz="Asia/Kolkata"
    )
    starts = [bucket.start for bucket in window.buckets()]
    assert len(starts) == 7
    assert all((s.hour, s.minute) == (18, 30) for s in starts)


def test_days_across_daylight_saving_last_23_and_25_hours():
    new_york = {"tz": "America/New_York", "bucket": "1d", "now": datetime(2026, 11, 27, tzinfo=UTC)}
    spring = resolve_window(
        start="2026-03-08T00:00:00-05:00", end="2026-03-09T00:00:00-04:00", **new_york
    )
    fall = resolve_window(
        start="2026-11-01T00:00:00-04:00", end="2026-11-02T00:00:00-05:00", **new_york
    )
    assert [b.end - b.start for b in spring.buckets()] == [timedelta(hours=23)]
    assert [b.end - b.start for b in fall.buckets()] == [timedelta(hours=25)]


def test_a_skipped_boundary_is_dropped_and_a_repeated_one_counts_once():
    """New York's 02:00 does not exist on 2026-03-08; 01:00 occurs twice on 2026-11-01."""
    hours = {"tz": "America/New_York", "bucket": "1h", "now": datetime(2026, 11, 27, tzinfo=UTC)}
    spring = resolve_window(
        start="2026-03-08T00:00:00-05:00", end="2026-03-08T05:00:00-04:00", **hours
    )
    local = [b.start.astimezone(spring.zone).strftime("%H:%M") for b in spring.buckets()]
    assert local == ["00:00", "01:00", "03:00", "04:00"]
    fall = resolve_window(
        start="2026-11-01T00:00:00-04:00", end="2026-11-01T04:00:00-05:00", **hours
    )
    lengths = [(b.end - b.start) // timedelta(minutes=1) for b in fall.buckets()]
    assert lengths == [60, 120, 60, 60]


@pytest.mark.parametrize(
    "tz", ["Mars/Olympus", "asia/kolkata", "", "UTC\n", "../etc/passwd", "+05:30"]
)
def test_unknown_zones_are_refused_naming_tz(tz):
    with pytest.raises(WindowError) as refused:
        resolve_window(now=datetime(2026, 11, 27, tzinfo=UTC), tz=tz)
    assert refused.value.field == "tz"
