"""Time windows of the usage endpoints: from query parameters to buckets.

Pure: no I/O, the clock is a parameter. Bucket alignment is ``api.core.buckets``'.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from api.core.buckets import EPOCH, WEEK, ceil_to, floor_to
from api.core.timestamps import TimestampError, parse_rfc3339

BUCKET_WIDTHS = {
    "5m": timedelta(minutes=5),
    "15m": timedelta(minutes=15),
    "30m": timedelta(minutes=30),
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "1d": timedelta(days=1),
    "7d": WEEK,
}
PRESETS = {
    "24h": ("5m", timedelta(hours=24)),
    "7d": ("1h", timedelta(days=7)),
    "30d": ("6h", timedelta(days=30)),
}
DEFAULT_RANGE = "24h"
MAX_SPAN = timedelta(days=800)
MAX_BUCKETS = 2_000
AUTO_MAX_BUCKETS = 300
TOP_RANGE = range(1, 101)
MIN_PRESET_BUCKETS = 4
# A preset's bucket override: widths that divide it into whole buckets, neither too few to
# draw nor more than a window may have (24h: 5m..6h; 7d: 15m..1d; 30d: 30m..1d).
PRESET_WIDTHS = {
    name: [
        bucket
        for bucket, width in BUCKET_WIDTHS.items()
        if duration % width == timedelta(0)
        and MIN_PRESET_BUCKETS <= duration // width <= MAX_BUCKETS
    ]
    for name, (_, duration) in PRESETS.items()
}


class WindowError(ValueError):
    """A query that names no valid window; the message says what is wrong and what is allowed."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class Bucket:
    start: datetime
    end: datetime  # exclusive
    partial: bool


@dataclass(frozen=True, slots=True)
class Window:
    range: str  # a preset's name or "custom"
    bucket: str
    width: timedelta
    start: datetime  # the first bucket's start
    end: datetime  # the last bucket's end: ceil(as_of)
    counted_from: datetime  # nothing before this is counted (a custom window's start)
    as_of: datetime  # nothing at or after this is counted

    @property
    def bucket_count(self) -> int:
        return (self.end - self.start) // self.width

    def buckets(self) -> list[Bucket]:
        starts = (self.start + n * self.width for n in range(self.bucket_count))
        return [
            Bucket(
                start=s,
                end=s + self.width,
                partial=s < self.counted_from or s + self.width > self.as_of,
            )
            for s in starts
        ]


def previous_span(window: Window) -> Window | None:
    """The span of equal length just before the counted data, ``[s - (as_of - s), s)``, in
    buckets of the same width; None when it would start before 1970 (nothing is stored then)."""
    start, end = window.counted_from - (window.as_of - window.counted_from), window.counted_from
    if start < EPOCH:
        return None
    return Window(
        range="custom",
        bucket=window.bucket,
        width=window.width,
        start=floor_to(start, window.width),
        end=ceil_to(end, window.width),
        counted_from=start,
        as_of=end,
    )


def parse_timestamp(field: str, text: str) -> datetime:
    try:
        return parse_rfc3339(text, truncate=False)
    except TimestampError as error:
        raise WindowError(field, f"{field} {error}") from None


def resolve_window(
    *,
    now: datetime,
    range_: str | None = None,
    start: str | None = None,
    end: str | None = None,
    bucket: str | None = None,
) -> Window:
    """The window the parameters name, or ``WindowError`` saying why there is none."""
    if range_ is not None and range_ not in PRESETS:
        raise WindowError("range", f"range must be one of {', '.join(PRESETS)}, not {range_!r}")
    if bucket is not None and bucket not in BUCKET_WIDTHS:
        raise WindowError(
            "bucket", f"bucket must be one of {', '.join(BUCKET_WIDTHS)}, not {bucket!r}"
        )
    if range_ is not None and start is not None:
        raise WindowError("start", "give either range or start and end, not both")
    if start is not None and end is None:
        raise WindowError("end", "a custom window needs end as well as start")
    end_time = parse_timestamp("end", end) if end is not None else None
    as_of = min(now, end_time) if end_time is not None else now
    if start is None:
        return _preset(range_ or DEFAULT_RANGE, bucket, as_of)
    return _custom(parse_timestamp("start", start), end_time, bucket, as_of)


def _preset(name: str, bucket: str | None, as_of: datetime) -> Window:
    default_bucket, duration = PRESETS[name]
    bucket = bucket or default_bucket
    if bucket not in PRESET_WIDTHS[name]:
        raise WindowError(
            "bucket",
            f"range={name} takes bucket {', '.join(PRESET_WIDTHS[name])}, not {bucket}: "
            f"widths that divide {name} into {MIN_PRESET_BUCKETS:,} to {MAX_BUCKETS:,} buckets",
        )
    width = BUCKET_WIDTHS[bucket]
    window_end = ceil_to(as_of, width)
    start = window_end - duration
    return Window(
        range=name,
        bucket=bucket,
        width=width,
        start=start,
        end=window_end,
        counted_from=start,
        as_of=as_of,
    )


def _custom(start: datetime, end: datetime, bucket: str | None, as_of: datetime) -> Window:
    if start >= as_of:
        raise WindowError(
            "start", "start must be before end and before the current time (nothing to count)"
        )
    if end - start > MAX_SPAN:
        raise WindowError("end", f"a custom window spans at most {MAX_SPAN.days} days")
    widths = [bucket] if bucket else list(BUCKET_WIDTHS)
    for name in widths:
        width = BUCKET_WIDTHS[name]
        window = Window(
            range="custom",
            bucket=name,
            width=width,
            start=floor_to(start, width),
            end=ceil_to(as_of, width),
            counted_from=start,
            as_of=as_of,
        )
        if bucket or window.bucket_count <= AUTO_MAX_BUCKETS:
            return _checked(window)
    return _checked(window)


def _checked(window: Window) -> Window:
    if window.bucket_count > MAX_BUCKETS:
        raise WindowError(
            "bucket",
            f"{window.bucket_count:,} buckets of {window.bucket} is too many: at most "
            f"{MAX_BUCKETS:,}; choose a wider bucket",
        )
    return window


def check_top(top: int) -> int:
    if top not in TOP_RANGE:
        raise WindowError("top", f"top must be between 1 and 100, not {top}")
    return top
