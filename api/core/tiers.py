"""Rollup tiers, and how a time range splits into their whole buckets (pure, no I/O).

Counts are kept per 5 minutes, hour, 6 hours, day and week (Monday-aligned, like 7-day
buckets); each tier's boundaries are boundaries of the finer ones. A range ``[start, end)``
is covered by raw events at its ragged edges, whole 5-minute buckets up to the next hour,
whole hours up to the next 6 hours, and so on up to whole weeks in the middle: a 30-day range
reads at most 4 + 2·6 + 2·3 + 2·5 + 2·11 rollup rows per key instead of 8,640.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from api.core.buckets import WEEK, ceil_to, floor_to

TIERS = {
    "5m": timedelta(minutes=5),
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "1d": timedelta(days=1),
    "7d": WEEK,
}
FINEST, COARSEST = TIERS["5m"], TIERS["7d"]

Span = tuple[datetime, datetime]  # [start, end); empty when start == end


@dataclass(frozen=True, slots=True)
class Cover:
    """``[start, end)`` as raw events in ``raw`` plus the rollup buckets starting in each
    tier's spans. Every instant is in exactly one of them."""

    raw: tuple[Span, Span]  # the head and the tail
    tiers: dict[str, tuple[Span, Span]]  # tier name → head and tail spans of bucket starts


def cover(start: datetime, end: datetime, coarsest: timedelta) -> Cover:
    """The cover of ``[start, end)`` by the tiers no wider than ``coarsest``.

    ``coarsest`` keeps rollup buckets inside a query's own buckets: a series of 6-hour
    buckets may read hourly rows, not daily ones.
    """
    nothing = (start, start)
    spans = dict.fromkeys(TIERS, (nothing, nothing))
    inner_start, inner_end = ceil_to(start, FINEST), floor_to(end, FINEST)
    if inner_start >= inner_end:
        return Cover(raw=((start, end), nothing), tiers=spans)
    usable = [(name, width) for name, width in TIERS.items() if width <= coarsest]
    low, high = inner_start, inner_end
    for (name, _), coarser in zip(usable, [*usable[1:], None], strict=True):
        if coarser is not None:
            coarse_low, coarse_high = ceil_to(low, coarser[1]), floor_to(high, coarser[1])
            if coarse_low < coarse_high:
                spans[name] = ((low, coarse_low), (coarse_high, high))
                low, high = coarse_low, coarse_high
                continue
        spans[name] = ((low, high), (high, high))
        break
    return Cover(raw=((start, inner_start), (inner_end, end)), tiers=spans)
