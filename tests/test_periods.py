"""A threshold's periods (§10): the day, week and month holding an instant on a zone's wall
clock, checked against the zone's own reading of the instant, across offset changes."""

from datetime import UTC, datetime, time, timedelta

from hypothesis import given
from hypothesis import strategies as st

from api.core import zones
from api.core.periods import PERIODS, period_holding

# Zones with offset changes (none of them at midnight), :30 and :45 offsets, and UTC.
_ZONES = ["UTC", "America/New_York", "Europe/Berlin", "Pacific/Chatham", "Asia/Kathmandu",
          "Australia/Lord_Howe"]  # fmt: skip
_INSTANTS = st.datetimes(
    min_value=datetime(2025, 12, 1), max_value=datetime(2027, 2, 1), timezones=st.just(UTC)
)


def _local(instant: datetime, zone) -> datetime:
    return instant.astimezone(zone)


@given(st.sampled_from(_ZONES), _INSTANTS, st.sampled_from(PERIODS))
def test_a_period_holds_its_instant_and_starts_at_a_local_midnight(tz, instant, period):
    zone = zones.zone_named(tz)
    start, end = period_holding(instant, period, zone)
    assert start <= instant < end
    local_start, local_end, local = _local(start, zone), _local(end, zone), _local(instant, zone)
    assert local_start.time() == time() and local_end.time() == time()
    if period == "day":
        assert local_start.date() == local.date()
        assert local_end.date() == local.date() + timedelta(days=1)
    elif period == "week":
        assert local_start.weekday() == 0
        assert local_end.date() == local_start.date() + timedelta(days=7)
        assert local_start.date() <= local.date() < local_end.date()
    else:
        assert local_start.date() == local.date().replace(day=1)
        assert local_end.date().day == 1
        assert (local_end.date() - timedelta(days=1)).month == local.month


@given(st.sampled_from(_ZONES), _INSTANTS, st.sampled_from(PERIODS))
def test_periods_follow_each_other_without_gap(tz, instant, period):
    zone = zones.zone_named(tz)
    start, end = period_holding(instant, period, zone)
    assert period_holding(end, period, zone)[0] == end
    assert period_holding(start - timedelta(microseconds=1), period, zone)[1] == start


def test_a_day_of_a_spring_forward_is_23_hours_and_of_a_fall_back_25():
    zone = zones.zone_named("America/New_York")
    spring = period_holding(datetime(2026, 3, 8, 12, tzinfo=UTC), "day", zone)
    fall = period_holding(datetime(2026, 11, 1, 12, tzinfo=UTC), "day", zone)
    assert spring[1] - spring[0] == timedelta(hours=23)
    assert fall[1] - fall[0] == timedelta(hours=25)


def test_a_month_whose_first_midnight_is_skipped_starts_at_the_next_one():
    """America/Asuncion moved its clocks from 00:00 to 01:00 on 2023-10-01. A day without
    a midnight belongs to the day before (as the usage buckets do), so October 2023 started
    on its 2nd there, and September ran a day longer."""
    zone = zones.zone_named("America/Asuncion")
    october = period_holding(datetime(2023, 10, 15, tzinfo=UTC), "month", zone)
    assert october[0].astimezone(zone) == datetime(2023, 10, 2, tzinfo=zone)
    first_of_october = datetime(2023, 10, 1, 12, tzinfo=zone)
    assert period_holding(first_of_october, "month", zone)[1] == october[0]
    assert period_holding(first_of_october, "month", zone)[0].astimezone(zone).day == 1
