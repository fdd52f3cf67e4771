"""RFC 3339 as the service reads it: checked against timestamps written out independently."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.core.timestamps import TimestampError, parse_rfc3339

instants = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
)
offsets = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59)


def _written(moment: datetime, offset_minutes: int, digits: str, t: str, z: str) -> str:
    """``moment`` as a client in ``offset_minutes`` writes it, fraction ``digits`` appended."""
    local = moment.astimezone(timezone(timedelta(minutes=offset_minutes))).replace(microsecond=0)
    sign = "+" if offset_minutes >= 0 else "-"
    hours, minutes = divmod(abs(offset_minutes), 60)
    zone = z if offset_minutes == 0 and z else f"{sign}{hours:02}:{minutes:02}"
    fraction = f".{digits}" if digits else ""
    return f"{local:%Y-%m-%d}{t}{local:%H:%M:%S}{fraction}{zone}"


@given(
    moment=instants,
    offset=offsets,
    digits=st.text("0123456789", max_size=12),
    t=st.sampled_from("Tt"),
    z=st.sampled_from(["Z", "z", ""]),
)
def test_event_times_keep_microseconds_truncated_toward_the_past(moment, offset, digits, t, z):
    text = _written(moment, offset, digits, t, z)
    whole_seconds = moment.replace(microsecond=0)
    expected = whole_seconds + timedelta(microseconds=int(digits[:6].ljust(6, "0") or 0))
    assert parse_rfc3339(text, truncate=True) == expected
    if len(digits) > 6:
        with pytest.raises(TimestampError, match="6 fractional digits"):
            parse_rfc3339(text, truncate=False)
    else:
        assert parse_rfc3339(text, truncate=False) == expected


def test_nanoseconds_never_round_into_the_next_bucket():
    assert parse_rfc3339("2026-11-02T05:59:59.9999999Z", truncate=True) == datetime(
        2026, 11, 2, 5, 59, 59, 999999, tzinfo=UTC
    )


@pytest.mark.parametrize(
    "text",
    [
        "2026-W48-3T00:00:00Z",  # week date
        "20261125T000000Z",  # basic format
        "2026-11-25 00:00:00Z",  # space separator
        "2026-11-25T00:00:00+05:30:15",  # seconds in the offset
        "2026-11-25T00:00:00",  # no offset
        "2026-11-25",  # a date
        "2026-11-25T00:00Z",  # no seconds
        "2026-11-25T00:00:00+0530",  # offset without colon
        "2026-11-25T00:00:00.Z",  # empty fraction
        "\u0662\u0660\u0662\u0666-11-25T00:00:00Z",  # Arabic-Indic digits (\d matches them)
        "2026-11-25T00:00:00Z\n",  # a trailing newline
        "2026-13-01T00:00:00Z",  # no month 13
        "2026-11-25T24:00:00Z",
        "2026-11-25T23:59:60Z",  # leap seconds cannot be held
        "2026-11-25T00:00:00+24:00",
        "0001-01-01T00:00:00+05:00",  # before 1970
        "1969-12-31T23:59:59Z",
        "9999-12-31T23:59:59-23:59",  # year 10000 in UTC
    ],
)
def test_anything_else_is_refused_with_a_reason(text):
    for truncate in (True, False):
        with pytest.raises(TimestampError) as refused:
            parse_rfc3339(text, truncate=truncate)
        assert str(refused.value)


def test_lowercase_t_and_z_are_rfc_3339():
    assert parse_rfc3339("2026-11-25t01:02:03z", truncate=False) == datetime(
        2026, 11, 25, 1, 2, 3, tzinfo=UTC
    )
