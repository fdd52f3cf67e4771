"""Rollup tiers, and how a time range splits into their whole buckets (pure, no I/O).

Counts are kept per 5 minutes, hour, 6 hours, day and week (Monday-aligned, like 7-day
buckets); each tier's boundaries are boundaries of the finer ones. A range ``[start, end)``
is covered by raw events at its ragged edges, whole 5-minute buckets up to the next hour,
whole hours up to the next 6 hours, and so on up to whole weeks in the middle: a 30-day range
reads at most 4 + 2·6 + 2·3 + 2·5 + 2·11 rollup rows per key instead of 8,640.
"""

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from itertools import pairwise

from api.core.buckets import EPOCH, WEEK, origin_of

TIERS = {
    "5m": timedelta(minutes=5),
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "1d": timedelta(days=1),
    "7d": WEEK,
}
FINEST, COARSEST = TIERS["5m"], TIERS["7d"]
RAW = "raw"  # the piece of a cover read from raw events
# Queued events are read where the tiers are: the spans of Cover.rolled_up.
QUEUED = "queued"

_US = timedelta(microseconds=1)
_TIER_US = {name: width // _US for name, width in TIERS.items()}
_WEEK_US = _TIER_US["7d"]
_ORIGIN = origin_of(COARSEST)  # every tier's buckets are aligned to the weekly ones

Span = tuple[datetime, datetime]  # [start, end)
_Pieces = tuple[tuple[str, int, int], ...]  # (piece, start, end) in µs


@dataclass(frozen=True, slots=True)
class Cover:
    """Spans of raw event time (``RAW``) and of each tier's bucket starts, ascending and
    disjoint; every instant of the covered range is in exactly one of them."""

    spans: dict[str, tuple[Span, ...]]  # RAW and each tier name → its spans

    def rolled_up(self) -> tuple[Span, ...]:
        """The spans every tier covers, together, ascending, adjacent ones joined: where
        events not yet in the rollups (queued) must be read besides them."""
        found: list[list[datetime]] = []
        for start, end in sorted(s for tier in TIERS for s in self.spans[tier]):
            if found and found[-1][1] == start:
                found[-1][1] = end
            else:
                found.append([start, end])
        return tuple((start, end) for start, end in found)


def cover(boundaries: Sequence[datetime], start: datetime, end: datetime) -> Cover:
    """The cover of ``[start, end)`` in which no rollup bucket crosses one of ``boundaries``
    (a query's bucket bounds, in order, spanning the range): each bucket's part of the range
    reads the coarsest whole tier buckets inside it, finer ones towards its edges, and raw
    events where not even a 5-minute bucket fits."""
    low, high = _us(start), _us(end)
    inner = boundaries[1:-1]
    inner = inner[bisect_right(inner, low, key=_us) : bisect_left(inner, high, key=_us)]
    starts = (start, *inner)
    spans = {piece: [list(span) for span in found] for piece, found in _leading(starts).items()}
    _add_bucket(spans, _us(starts[-1]), high)
    return Cover(
        spans={
            piece: tuple((_instant(a), _instant(b)) for a, b in found)
            for piece, found in spans.items()
        }
    )


# A read's window keeps its buckets but the last while its end (the clock) moves through
# that one: 5 minutes for a 24-hour read, whose 288 buckets took 0.7-1 ms to cover here.
@lru_cache(maxsize=256)
def _leading(starts: tuple[datetime, ...]) -> dict[str, tuple[tuple[int, int], ...]]:
    """The spans (µs) covering the buckets between consecutive ``starts``: every bucket of
    a cover but its last, which starts at ``starts[-1]``."""
    spans: dict[str, list[list[int]]] = {piece: [] for piece in (RAW, *TIERS)}
    for bucket_start, bucket_end in pairwise(_us(moment) for moment in starts):
        _add_bucket(spans, bucket_start, bucket_end)
    return {piece: tuple((a, b) for a, b in found) for piece, found in spans.items()}


def _add_bucket(spans: dict[str, list[list[int]]], bucket_start: int, bucket_end: int) -> None:
    """Adds the cover of a bucket (µs) after the spans, joining a span it continues."""
    phase = (bucket_start - _ORIGIN_US) % _WEEK_US
    shift = bucket_start - phase
    for piece, piece_start, piece_end in _bucket_cover(phase, bucket_end - bucket_start):
        found = spans[piece]
        if found and found[-1][1] == piece_start + shift:
            found[-1][1] = piece_end + shift
        else:
            found.append([piece_start + shift, piece_end + shift])


_ORIGIN_US = (_ORIGIN - EPOCH) // _US


def _us(moment: datetime) -> int:
    return (moment - EPOCH) // _US


def _instant(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


# Tiers repeat weekly, so a bucket's cover depends only on where in the week it starts and on
# its length: the same few shapes serve every request.
@lru_cache(maxsize=4096)
def _bucket_cover(start: int, length: int) -> _Pieces:
    """The cover of ``[start, start + length)`` (µs after a Monday midnight UTC): raw at the
    edges up to the first 5-minute boundary, then each tier out to the next coarser one,
    the coarsest whole buckets in the middle. Empty pieces are left out."""
    end = start + length
    inner_start, inner_end = _ceil(start, _TIER_US["5m"]), _floor(end, _TIER_US["5m"])
    if inner_start >= inner_end:
        return ((RAW, start, end),)
    pieces = [(RAW, start, inner_start), (RAW, inner_end, end)]
    low, high = inner_start, inner_end
    names = list(TIERS)
    for name, coarser in zip(names, [*names[1:], None], strict=True):
        if coarser is not None:
            coarse_low = _ceil(low, _TIER_US[coarser])
            coarse_high = _floor(high, _TIER_US[coarser])
            if coarse_low < coarse_high:
                pieces += [(name, low, coarse_low), (name, coarse_high, high)]
                low, high = coarse_low, coarse_high
                continue
        pieces.append((name, low, high))
        break
    return tuple(sorted((p for p in pieces if p[1] < p[2]), key=lambda p: p[1]))


def _floor(us: int, width: int) -> int:
    return us - us % width


def _ceil(us: int, width: int) -> int:
    return -_floor(-us, width)
