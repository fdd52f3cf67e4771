"""A threshold's periods: the day, week (from Monday) or month holding an instant on a zone's
wall clock (pure, no I/O but the pinned zone data).

A period starts at a day boundary (api.core.zones: local midnight, where the zone does not
skip it), so its days are the usage buckets' days: a day whose midnight a zone skips belongs
to the day before, and a month whose first midnight is skipped starts at the next one.
"""

from datetime import date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from api.core.zones import DAY, WEEK, at_or_after, at_or_before

Period = Literal["day", "week", "month"]
PERIODS: tuple[Period, ...] = ("day", "week", "month")
_US = timedelta(microseconds=1)


def period_holding(instant: datetime, period: Period, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """``[start, end)`` of the period that holds ``instant``."""
    if period == "month":
        local = instant.astimezone(zone).date().replace(day=1)
        start = _month_start(local, zone)
        if start > instant:  # the month's first midnight was skipped: still last month
            local = (local - DAY).replace(day=1)
            start = _month_start(local, zone)
        return start, _month_start((local + timedelta(days=32)).replace(day=1), zone)
    width = DAY if period == "day" else WEEK
    return next(at_or_before(instant, width, zone)), next(at_or_after(instant + _US, width, zone))


def _month_start(first_day: date, zone: ZoneInfo) -> datetime:
    """The first day boundary on or after ``first_day`` (its local midnight, if it has one)."""
    before = datetime.combine(first_day - DAY, datetime.min.time(), zone)
    return next(b for b in at_or_after(before, DAY, zone) if b.astimezone(zone).date() >= first_day)
