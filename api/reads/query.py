"""What a usage request asks for (a window, its reach: one organization or all, the top-N
size) and the bind parameters every section's statements read: the window's bounds and the
covers of it by rollup tiers (``api.core.tiers``).
"""

import enum
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, DateTime, Integer, Interval, Text, and_, bindparam, or_

from api.core.buckets import origin_of
from api.core.tiers import COARSEST, Cover, cover
from api.core.windows import Window, previous_span
from api.reads.responses import WindowOut

_TIMESTAMP = DateTime(timezone=True)
ORG = bindparam("org", type_=Text)
TOP = bindparam("top", type_=Integer)
WIDTH = bindparam("width", type_=Interval)
ORIGIN = bindparam("origin", type_=_TIMESTAMP)
COUNTED_FROM = bindparam("counted_from", type_=_TIMESTAMP)
AS_OF = bindparam("as_of", type_=_TIMESTAMP)
FIRST_BUCKET = bindparam("first_bucket", type_=_TIMESTAMP)
LAST_BUCKET = bindparam("last_bucket", type_=_TIMESTAMP)

# A request reads rollups through two covers of its window (api.core.tiers): the series' cover
# keeps to tiers no wider than its buckets; the totals' cover (breakdowns) uses them all.
# Reservations also read what changed after the window (up to LATEST: events are never
# more than minutes ahead of the clock).
SERIES, TOTALS, AFTER = "series", "totals", "after"
RAW = "raw"
LATEST = datetime(9999, 12, 31, tzinfo=UTC)


class Reach(enum.Enum):
    ORG = "one organization"
    ALL = "all organizations"

    def where(self, table: Any) -> list[ColumnElement[bool]]:
        return [table.c.org_id == ORG] if self is Reach.ORG else []


@dataclass(frozen=True, slots=True)
class SectionQuery:
    """What a usage request asks for: a window, one org (None: all orgs) and the top-N size."""

    window: Window
    org: str | None
    top: int
    compare: bool = False  # also the summary of the span just before (compare=previous)

    @property
    def reach(self) -> Reach:
        return Reach.ALL if self.org is None else Reach.ORG

    def params(self) -> dict[str, Any]:
        window = self.window
        return {
            "org": self.org,
            "top": self.top,
            "width": window.width,
            "origin": origin_of(window.width),
            "counted_from": window.counted_from,
            "as_of": window.as_of,
            "first_bucket": window.start,
            "last_bucket": window.end - window.width,
            **_cover_params(SERIES, cover(window.counted_from, window.as_of, window.width)),
            **_cover_params(TOTALS, cover(window.counted_from, window.as_of, COARSEST)),
            **_cover_params(AFTER, cover(window.as_of, LATEST, COARSEST)),
        }

    def previous(self) -> "SectionQuery | None":
        """The same question over the span just before, if one was asked for and exists."""
        span = previous_span(self.window) if self.compare else None
        return None if span is None else replace(self, window=span, compare=False)

    def window_out(self) -> WindowOut:
        window = self.window
        return WindowOut(
            start=window.counted_from,
            end=window.as_of,
            as_of=window.as_of,
            range=window.range,
            bucket=window.bucket,
            bucket_seconds=int(window.width.total_seconds()),
        )


def _cover_params(name: str, found: Cover) -> dict[str, datetime]:
    pieces = {RAW: found.raw, **found.tiers}
    return {
        f"{name}_{piece}_{end}_{bound}": span[index]
        for piece, (head, tail) in pieces.items()
        for end, span in (("head", head), ("tail", tail))
        for index, bound in enumerate(("from", "to"))
    }


def in_cover(column: ColumnElement, name: str, piece: str) -> ColumnElement[bool]:
    """``column`` (a bucket start, or a raw event's time) in the cover's spans for ``piece``."""

    def bound(end: str, which: str) -> Any:
        return bindparam(f"{name}_{piece}_{end}_{which}", type_=_TIMESTAMP)

    return or_(
        *(and_(column >= bound(end, "from"), column < bound(end, "to")) for end in ("head", "tail"))
    )
