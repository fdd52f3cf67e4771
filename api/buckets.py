"""Bucket arithmetic on UTC instants: buckets are whole multiples of their width since the
Unix epoch, so every instant belongs to exactly one bucket of a given width."""

from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ROLLUP_WIDTH = timedelta(minutes=5)
_MICROSECOND = timedelta(microseconds=1)


def floor_time(moment: datetime, width: timedelta) -> datetime:
    """The start of the bucket of ``width`` that holds ``moment`` (exact to the microsecond)."""
    width_us = width // _MICROSECOND
    offset_us = (moment - EPOCH) // _MICROSECOND
    return EPOCH + timedelta(microseconds=offset_us - offset_us % width_us)
