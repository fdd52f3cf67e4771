"""What a usage request asks for (a window, its reach: one organization or all, the top-N
size, the filters) and the bind parameters every section's statements read: the window's
buckets, the covers of it by rollup tiers (``api.core.tiers``) and the filters' values.
"""

import enum
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    DateTime,
    Integer,
    Select,
    Text,
    any_,
    bindparam,
    func,
    select,
    true,
    tuple_,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql.elements import Grouping

from api.core.filters import Filters
from api.core.tiers import QUEUED, Cover, cover
from api.core.windows import Window, previous_span
from api.reads.responses import WindowOut
from api.storage.db import unnest_rows
from api.storage.schema import orgs

_TIMESTAMP = DateTime(timezone=True)
ORG = bindparam("org", type_=Text)
TOP = bindparam("top", type_=Integer)
COUNTED_FROM = bindparam("counted_from", type_=_TIMESTAMP)
AS_OF = bindparam("as_of", type_=_TIMESTAMP)
# The window's buckets (their bounds follow the zone's wall clock, so they are listed),
# parenthesized so that they can be subscripted.
BUCKET_STARTS = Grouping(bindparam("bucket_starts", type_=ARRAY(_TIMESTAMP)))
BUCKET_ENDS = Grouping(bindparam("bucket_ends", type_=ARRAY(_TIMESTAMP)))

# A request reads rollups through two covers of its window (api.core.tiers): the series' cover
# keeps each rollup row inside one of its buckets; the totals' cover (breakdowns) has no
# buckets to keep to.
# Reservations also read what changed after the window (up to LATEST: events are never
# more than minutes ahead of the clock).
SERIES, TOTALS, AFTER = "series", "totals", "after"
LATEST = datetime(9999, 12, 31, tzinfo=UTC)
NO_FILTERS = Filters()


class Reach(enum.Enum):
    ORG = "one organization"
    ALL = "all organizations"


# The filters' values (api.core.filters), and the columns each one reads.
_MODELS = bindparam("models", type_=ARRAY(Text))
_AGENTS = bindparam("agents", type_=ARRAY(Text))
_ORGS = bindparam("orgs", type_=ARRAY(Text))
FILTER_COLUMNS = {
    "model": ["model"],
    "identity": ["identity_kind", "identity_id"],
    "agent": ["agent_id"],
    "org": [],
}


def _identity_in(relation: Any) -> ColumnElement[bool]:
    wanted = unnest_rows([("kind", Text), ("id", Text)], prefix="identity_filter_")
    pairs = tuple_(relation.c.identity_kind, relation.c.identity_id)
    return pairs.in_(select(wanted.c.kind, wanted.c.id))


_FILTER_CONDITIONS = {
    "model": lambda relation: relation.c.model == any_(_MODELS),
    "identity": _identity_in,
    "agent": lambda relation: relation.c.agent_id == any_(_AGENTS),
    "org": lambda relation: relation.c.org_id == any_(_ORGS),
}


@dataclass(frozen=True, slots=True)
class Shape:
    """What a read's SQL depends on: its reach and the filters it applies (not their values)."""

    reach: Reach
    filters: frozenset[str] = frozenset()

    def where(self, relation: Any) -> list[ColumnElement[bool]]:
        """The conditions on ``relation`` (a raw or rollup table with the columns the
        filters read) for the organization and the filters."""
        conditions = [relation.c.org_id == ORG] if self.reach is Reach.ORG else []
        return conditions + [_FILTER_CONDITIONS[name](relation) for name in sorted(self.filters)]

    @property
    def planned_with_values(self) -> bool:
        """Whether its statements must be planned with their values: a model filter reads
        one model of a few through an index that leads with it, which a generic plan (one
        plan for any list of models) misjudges. The 10M-call org's top consumers of its top
        model took 14-16 ms on the generic plan, 6-7 ms with the values, planning included
        (the LLM read over HTTP, 30 days, p50 / p95: 20.1 / 23.6 -> 11.1 / 12.2 ms). An
        identity filter's generic plan is as good, and planning costs it 3 ms."""
        return "model" in self.filters

    def columns(self) -> set[str]:
        """The columns the filters read."""
        return {column for name in self.filters for column in FILTER_COLUMNS[name]}


@dataclass(frozen=True, slots=True)
class SectionQuery:
    """What a usage request asks for: a window, one org (None: all orgs), the top-N size
    and the filters."""

    window: Window
    org: str | None
    top: int
    compare: bool = False  # also the summary of the span just before (compare=previous)
    filters: Filters = NO_FILTERS

    @property
    def reach(self) -> Reach:
        return Reach.ALL if self.org is None else Reach.ORG

    @property
    def shape(self) -> Shape:
        return Shape(self.reach, self.filters.names)

    def _filter_params(self) -> dict[str, Any]:
        names = self.filters.names
        params: dict[str, Any] = {
            "models": list(self.filters["model"]) if "model" in names else None,
            "agents": list(self.filters["agent"]) if "agent" in names else None,
            "orgs": list(self.filters["org"]) if "org" in names else None,
        }
        kinds, ids = self.filters.identities() if "identity" in names else (None, None)
        return params | {"identity_filter_kind": kinds, "identity_filter_id": ids}

    def span_params(self) -> dict[str, Any]:
        """The parameters of a statement over the window as one span (no buckets): a
        summary, a breakdown."""
        window = self.window
        return {
            **self._filter_params(),
            "org": self.org,
            "top": self.top,
            "counted_from": window.counted_from,
            "as_of": window.as_of,
            **_cover_params(TOTALS, _whole(window.counted_from, window.as_of)),
            **_cover_params(AFTER, _whole(window.as_of, LATEST)),
        }

    def params(self) -> dict[str, Any]:
        """The parameters of any statement of the query: the span's and the buckets'."""
        window = self.window
        return {
            **self.span_params(),
            "bucket_starts": list(window.boundaries[:-1]),
            "bucket_ends": list(window.boundaries[1:]),
            **_cover_params(SERIES, cover(window.boundaries, window.counted_from, window.as_of)),
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
            tz=window.zone.key,
        )


def _whole(start: datetime, end: datetime) -> Cover:
    return cover((start, end), start, end)


def _cover_params(name: str, found: Cover) -> dict[str, list[datetime]]:
    pieces = {**found.spans, QUEUED: found.rolled_up()}
    return {
        f"{name}_{piece}_{bound}": [span[index] for span in spans]
        for piece, spans in pieces.items()
        for index, bound in enumerate(("lo", "hi"))
    }


def in_cover(
    rows: Select,
    column: ColumnElement,
    name: str,
    piece: str,
    where: list[ColumnElement[bool]],
    reach: Reach,
) -> Select:
    """``rows`` meeting ``where`` whose ``column`` (a bucket start, or a raw event's time) is
    in the spans of cover ``name`` for ``piece``: one index range scan per span. The spans
    drive a LATERAL subquery. For one organization OFFSET 0 keeps it one: flattened, the
    planner, which cannot see the spans' bounds, may turn the join around into a scan of the
    whole table. Across organizations (where Citus refuses the OFFSET) the rows are narrowed
    to the array of every organization: every index leads with org_id, so that is a range
    scan per organization and span, where the planner otherwise scanned the whole tier
    (1.1 s for the LLM top consumers at 10 million calls a month, 36 ms so)."""
    spans = unnest_rows([("lo", _TIMESTAMP), ("hi", _TIMESTAMP)], prefix=f"{name}_{piece}_")
    within = rows.where(*where, column >= spans.c.lo, column < spans.c.hi)
    if reach is Reach.ORG:
        within = within.offset(0).lateral()
        return select(*within.c).select_from(spans).join(within, true())
    every_org = func.array(select(orgs.c.org_id).scalar_subquery())
    within = within.where(column.table.c.org_id == any_(every_org)).lateral()
    return select(*within.c).select_from(spans).join(within, true())
