"""RFC 3339 timestamps, parsed exactly as docs/reading-usage.md says (pure, no I/O).

``datetime.fromisoformat`` and msgspec accept more than RFC 3339 (week dates, the basic
format, a space separator, seconds in the offset) and round nanoseconds up into the next
second; both are wrong for a meter, so timestamps are parsed here.
"""

import re
from datetime import UTC, datetime
from typing import TypeVar

EARLIEST_YEAR, LATEST_YEAR = 1970, 9999

# [0-9], not \d: \d matches every Unicode digit.
_RFC3339 = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})[Tt]"
    r"(?P<time>[0-9]{2}:[0-9]{2}:[0-9]{2})(?:\.(?P<fraction>[0-9]+))?"
    r"(?:(?P<utc>[Zz])|(?P<sign>[+-])(?P<hours>[0-9]{2}):(?P<minutes>[0-9]{2}))"
)
# The form producers send (upper-case T and Z, at most microseconds, an offset within
# ±23:59): fromisoformat reads it as it is, in C, where the general path first rewrites it.
_COMMON = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?"
    r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
)
EXAMPLE = "2026-11-01T00:00:00Z"
_T = TypeVar("_T", bound=datetime)


class TimestampError(ValueError):
    """Not an RFC 3339 timestamp this service can use; the message says why."""


def utc_iso(moment: datetime) -> str:
    """``moment`` in RFC 3339 as the service writes it: UTC as ``Z``."""
    return moment.isoformat().replace("+00:00", "Z")


def parse_rfc3339(text: str, *, truncate: bool, kind: type[_T] = datetime) -> _T:  # type: ignore[assignment]
    """The UTC instant ``text`` names, as a ``kind``. Fractions finer than microseconds are
    truncated toward the past when ``truncate`` (event times: never rounded into the next
    bucket), refused otherwise (query times)."""
    if _COMMON.fullmatch(text):
        return _in_utc(text, text, kind)
    found = _RFC3339.fullmatch(text)
    if found is None:
        raise TimestampError(f"must be an RFC 3339 timestamp such as {EXAMPLE}")
    fraction = found["fraction"]
    if fraction is not None and len(fraction) > 6 and not truncate:
        raise TimestampError("must not have more than 6 fractional digits (microseconds)")
    if found["sign"] and (int(found["hours"]) > 23 or int(found["minutes"]) > 59):
        raise TimestampError(f"has an offset beyond ±23:59: {text}")
    offset = "+00:00" if found["utc"] else text[found.start("sign") :]
    # In the one form fromisoformat reads (in C): the caller's digits, cut to microseconds.
    normalized = f"{found['date']}T{found['time']}{'.' + fraction[:6] if fraction else ''}{offset}"
    return _in_utc(normalized, text, kind)


def _in_utc(normalized: str, text: str, kind: type[_T]) -> _T:
    """The instant of ``normalized`` (``text`` in the form fromisoformat reads), in UTC."""
    try:
        moment = kind.fromisoformat(normalized)
    except ValueError:
        raise TimestampError(f"is not a valid date and time: {text}") from None
    out_of_range = TimestampError(f"must be in the years {EARLIEST_YEAR} to {LATEST_YEAR} in UTC")
    if moment.utcoffset():
        try:
            moment = moment.astimezone(UTC)
        except OverflowError:  # past year 1 or 9999 in UTC
            raise out_of_range from None
    if not EARLIEST_YEAR <= moment.year <= LATEST_YEAR:
        raise out_of_range
    return moment
