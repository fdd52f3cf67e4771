"""Bucket arithmetic on UTC instants.

Buckets are whole multiples of their width since the Unix epoch, so every instant belongs to
exactly one bucket of a given width; 7-day buckets start on Mondays (origin 1970-01-05).
"""

from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
WEEK = timedelta(days=7)

_MONDAY_ORIGIN = datetime(1970, 1, 5, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def origin_of(width: timedelta) -> datetime:
    return _MONDAY_ORIGIN if width == WEEK else EPOCH


def floor_to(moment: datetime, width: timedelta) -> datetime:
    """The start of the bucket of ``width`` that holds ``moment`` (exact to the microsecond)."""
    origin = origin_of(width)
    offset_us = (moment - origin) // _MICROSECOND
    return origin + timedelta(microseconds=offset_us - offset_us % (width // _MICROSECOND))


def ceil_to(moment: datetime, width: timedelta) -> datetime:
    """The first bucket boundary at or after ``moment``."""
    floor = floor_to(moment, width)
    return floor if floor == moment else floor + width
