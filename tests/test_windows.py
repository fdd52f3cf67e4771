"""Time windows, checked against integer arithmetic on epoch microseconds."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.core.windows import (
    AUTO_MAX_BUCKETS,
    BUCKET_WIDTHS,
    MAX_BUCKETS,
    PRESETS,
    WindowError,
    check_top,
    previous_span,
    resolve_window,
)
from testkit.oracle import US, WIDTH_US, epoch_us
from testkit.oracle import ceil_us as oracle_ceil
from testkit.oracle import floor_us as oracle_floor


def iso(moment: datetime) -> str:
    return moment.isoformat()


_random_moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC)
)
# Instants on bucket boundaries, where off-by-one mistakes live.
_aligned_moments = st.builds(
    lambda weeks, minutes: (
        datetime(2026, 1, 5, tzinfo=UTC) + timedelta(weeks=weeks, minutes=minutes)
    ),
    st.integers(-300, 300),
    st.sampled_from([0, 5, 15, 30, 60, 360, 1440]),
)
moments = st.one_of(_random_moments, _aligned_moments)
# Spans of a whole number of some bucket width, around the 300 and 2,000 bucket limits.
spans = st.one_of(
    st.integers(1, 800 * 86_400 * US).map(lambda us: timedelta(microseconds=us)),
    st.builds(
        lambda n, width: n * width,
        st.sampled_from([1, 2, 299, 300, 301, 1999, 2000, 2001]),
        st.sampled_from(list(BUCKET_WIDTHS.values())),
    ),
)
lags = st.one_of(
    st.just(timedelta(0)),
    st.integers(-(10**12), 10**12).map(lambda us: timedelta(microseconds=us)),
)
offsets = st.sampled_from([timedelta(0), timedelta(hours=2), timedelta(hours=-7, minutes=-30)])


# An end up to 28 years before now: from the earliest moment (2000) that is still after 1970,
# where the service's times begin (10**9 s, 31.7 years, reached 1968: an error, not a window).
@given(
    now=moments,
    preset=st.sampled_from(list(PRESETS)),
    end_before=st.none() | st.integers(0, 9 * 10**8),
)
def test_presets_give_their_aligned_bucket_count_ending_at_ceil_as_of(now, preset, end_before):
    end = None if end_before is None else iso(now - timedelta(seconds=end_before))
    window = resolve_window(now=now, range_=preset, end=end)
    as_of = now if end is None else min(now, datetime.fromisoformat(end))
    bucket = {"24h": "5m", "7d": "1h", "30d": "6h"}[preset]
    buckets = window.buckets()
    assert len(buckets) == {"24h": 288, "7d": 168, "30d": 120}[preset]
    assert window.as_of == as_of and window.bucket == bucket
    assert epoch_us(window.end) == oracle_ceil(epoch_us(as_of), bucket)
    assert all(epoch_us(b.start) % WIDTH_US[bucket] == 0 for b in buckets)
    assert buckets[-1].start + window.width == window.end


@given(
    start=moments,
    span=spans,
    lag=lags,
    offset=offsets,
    bucket=st.none() | st.sampled_from(list(BUCKET_WIDTHS)),
)
def test_custom_windows_follow_the_rules(start, span, lag, offset, bucket):
    end = start + span
    now = end + lag
    params = {
        "start": start.astimezone(timezone(offset)).isoformat(),
        "end": end.astimezone(timezone(offset)).isoformat(),
    }
    as_of = min(now, end)
    try:
        window = resolve_window(now=now, bucket=bucket, **params)
    except WindowError as error:
        if start >= as_of:
            assert error.field == "start"
            return
        if span > timedelta(days=800):
            assert error.field == "end"
            return
        chosen = bucket or "7d"
        count = (
            oracle_ceil(epoch_us(as_of), chosen) - oracle_floor(epoch_us(start), chosen)
        ) // WIDTH_US[chosen]
        assert count > MAX_BUCKETS and error.field == "bucket"
        return
    assert start < as_of and span <= timedelta(days=800)
    assert window.range == "custom" and window.as_of == as_of and window.counted_from == start

    def count(name: str) -> int:
        low, high = oracle_floor(epoch_us(start), name), oracle_ceil(epoch_us(as_of), name)
        return (high - low) // WIDTH_US[name]

    if bucket is None:
        fitting = [name for name in BUCKET_WIDTHS if count(name) <= AUTO_MAX_BUCKETS]
        assert window.bucket == fitting[0]
    else:
        assert window.bucket == bucket
    buckets = window.buckets()
    assert len(buckets) == count(window.bucket) <= MAX_BUCKETS
    # Contiguous, no gap or overlap, covering [start, as_of) and nothing more.
    w = WIDTH_US[window.bucket]
    starts = [epoch_us(b.start) for b in buckets]
    assert starts == list(range(starts[0], starts[0] + w * len(starts), w))
    assert starts[0] <= epoch_us(start) < starts[0] + w
    assert starts[-1] < epoch_us(as_of) <= starts[-1] + w
    for b, s in zip(buckets, starts, strict=True):
        inside = s >= epoch_us(start) and s + w <= epoch_us(as_of)
        assert b.partial == (not inside)


NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("params", "field", "says"),
    [
        (
            {"range_": "24h", "start": "2026-11-01T00:00:00Z", "end": "2026-11-02T00:00:00Z"},
            "start",
            "either range or start",
        ),
        ({"start": "2026-11-01T00:00:00Z"}, "end", "needs end"),
        ({"start": "2026-11-24T12:00:00Z", "end": "2026-11-25T00:00:00Z"}, "start", "before"),
        ({"start": "2026-11-02T00:00:00Z", "end": "2026-11-01T00:00:00Z"}, "start", "before"),
        ({"start": "2026-11-01T00:00:00", "end": "2026-11-02T00:00:00Z"}, "start", "RFC 3339"),
        ({"end": "yesterday"}, "end", "RFC 3339"),
        ({"range_": "90d"}, "range", "24h, 7d, 30d"),
        ({"bucket": "2h"}, "bucket", "5m, 15m"),
        ({"start": "2024-01-01T00:00:00Z", "end": "2026-11-01T00:00:00Z"}, "end", "800 days"),
        (
            {"start": "2026-01-01T00:00:00Z", "end": "2026-11-01T00:00:00Z", "bucket": "5m"},
            "bucket",
            "at most 2,000",
        ),
        ({"range_": "30d", "bucket": "5m"}, "bucket", "takes bucket 30m, 1h, 6h, 1d"),
        ({"range_": "24h", "bucket": "7d"}, "bucket", "takes bucket 5m, 15m, 30m, 1h, 6h"),
        ({"range_": "24h", "bucket": "1d"}, "bucket", "not 1d"),
        ({"range_": "7d", "bucket": "5m"}, "bucket", "15m, 30m, 1h, 6h, 1d"),
        ({"range_": "24h", "end": "0001-01-01T00:00:00Z"}, "end", "years 1970 to 9999"),
        ({"end": "9999-12-31T23:59:59-23:59"}, "end", "years 1970 to 9999"),
        ({"start": "1969-12-31T23:59:59Z", "end": "1970-01-02T00:00:00Z"}, "start", "1970"),
    ],
)
def test_invalid_windows_say_what_is_wrong(params, field, says):
    with pytest.raises(WindowError) as refused:
        resolve_window(now=NOW, **params)
    assert refused.value.field == field
    assert says in str(refused.value)


def test_defaults_to_the_last_24_hours_now():
    window = resolve_window(now=NOW + timedelta(seconds=1))
    assert (window.range, window.bucket, window.as_of) == ("24h", "5m", NOW + timedelta(seconds=1))
    assert window.end == NOW + timedelta(minutes=5)
    assert window.buckets()[-1].partial and not window.buckets()[0].partial


def test_an_end_in_the_future_is_capped_at_now():
    assert resolve_window(now=NOW, range_="7d", end="2030-01-01T00:00:00Z").as_of == NOW


def test_weekly_buckets_start_on_mondays():
    window = resolve_window(
        now=NOW, start="2026-08-01T00:00:00Z", end="2026-11-01T00:00:00Z", bucket="7d"
    )
    assert all(b.start.weekday() == 0 and b.start.hour == 0 for b in window.buckets())


@pytest.mark.parametrize(("top", "ok"), [(0, False), (1, True), (100, True), (101, False)])
def test_top_is_between_1_and_100(top, ok):
    if ok:
        assert check_top(top) == top
    else:
        with pytest.raises(WindowError):
            check_top(top)


@given(now=moments, preset=st.sampled_from(list(PRESETS)), lag=st.integers(0, 10**9))
def test_the_previous_span_has_the_same_length_and_ends_where_counting_starts(now, preset, lag):
    window = resolve_window(now=now, range_=preset, end=iso(now - timedelta(microseconds=lag)))
    previous = previous_span(window)
    assert previous is not None
    assert previous.as_of == window.counted_from
    assert previous.as_of - previous.counted_from == window.as_of - window.counted_from
    assert previous.width == window.width
    assert previous.start <= previous.counted_from < previous.end
    assert previous.end - previous.as_of < previous.width


def test_no_previous_span_before_1970():
    window = resolve_window(
        now=NOW, start="1970-01-01T00:00:00Z", end="1970-01-02T00:00:00Z", bucket="1h"
    )
    assert previous_span(window) is None


@given(
    start=_random_moments,
    length=st.integers(1, 40 * 86_400 * US),
    horizon=_random_moments,
    bucket=st.sampled_from([None, "5m", "1h", "1d"]),
)
def test_edges_older_than_the_raw_events_snap_outward_to_five_minutes(
    start, length, horizon, bucket
):
    end = start + timedelta(microseconds=length)
    try:
        plain = resolve_window(now=end, start=iso(start), end=iso(end), bucket=bucket)
    except WindowError:
        return  # too many buckets of that width
    snapped = resolve_window(
        now=end, start=iso(start), end=iso(end), bucket=bucket, raw_since=horizon
    )
    assert snapped.boundaries == plain.boundaries
    five = 300 * US
    for given_edge, edge, outward in (
        (plain.counted_from, snapped.counted_from, oracle_floor),
        (plain.as_of, snapped.as_of, oracle_ceil),
    ):
        if given_edge >= horizon:
            assert edge == given_edge
        else:
            expected = outward(epoch_us(given_edge), "5m")
            expected = min(max(expected, epoch_us(plain.start)), epoch_us(plain.end))
            assert epoch_us(edge) == expected and abs(epoch_us(edge) - epoch_us(given_edge)) < five
    previous = previous_span(snapped)
    if previous is not None and previous.counted_from < horizon:
        assert (
            epoch_us(previous.counted_from) % five == 0 or previous.counted_from == previous.start
        )
