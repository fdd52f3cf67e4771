"""What every section's SQL shares: its parameters, its reach (one org or all), buckets and top-N.

Statements are built once per reach (one org, or all orgs for admins) and compiled at
import; a request only binds parameters.
"""

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.rows import namedtuple_row
from sqlalchemy import (
    CTE,
    BigInteger,
    ColumnElement,
    DateTime,
    Integer,
    Interval,
    Select,
    Subquery,
    Text,
    and_,
    bindparam,
    case,
    cast,
    exists,
    func,
    or_,
    select,
    union_all,
)

from api.core.buckets import origin_of
from api.core.tiers import COARSEST, Cover, cover
from api.core.windows import Window
from api.reads.responses import WindowOut
from api.storage.db import Compiled, compile_statement
from api.storage.rollups import Family
from api.storage.schema import orgs

_TIMESTAMP = DateTime(timezone=True)
ORG = bindparam("org", type_=Text)
TOP = bindparam("top", type_=Integer)
WIDTH = bindparam("width", type_=Interval)
ORIGIN = bindparam("origin", type_=_TIMESTAMP)
COUNTED_FROM = bindparam("counted_from", type_=_TIMESTAMP)
AS_OF = bindparam("as_of", type_=_TIMESTAMP)
FIRST_BUCKET = bindparam("first_bucket", type_=_TIMESTAMP)
LAST_BUCKET = bindparam("last_bucket", type_=_TIMESTAMP)

# A request reads rollups through two covers of its window (api.tiers): the series' cover
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


def covered(name: str, reach: Reach, family: Family) -> CTE:
    """Every counted row of a rollup family over cover ``name``: its tiers' whole buckets
    (``at`` is the bucket start) and the raw events at the edges (``at`` is their time)."""
    tiers = [
        select(table.c.bucket_start.label("at"), *(table.c[c] for c in family.columns)).where(
            *reach.where(table), in_cover(table.c.bucket_start, name, tier)
        )
        for tier, table in family.tables.items()
    ]
    raw = family.raw(lambda table: [*reach.where(table), in_cover(table.c.time, name, RAW)])
    return union_all(*tiers, *raw).cte(f"{name}_facts")


def bucket_of(time: ColumnElement) -> ColumnElement:
    return func.date_bin(WIDTH, time, ORIGIN)


def total(column: ColumnElement) -> ColumnElement:
    """SUM that stays an integer: PostgreSQL sums bigints as numeric."""
    summed = func.sum(column)
    return cast(summed, BigInteger) if isinstance(column.type, BigInteger | Integer) else summed


def code_point_order(column: ColumnElement) -> ColumnElement:
    """Ascending by code point, whatever the database's collation: the documented tie order."""
    return column.collate("C")


def top_n(
    per_item: Subquery,
    keys: Sequence[str],
    measures: Sequence[str],
    order: Callable[[Subquery], list[ColumnElement]],
) -> Select:
    """The first TOP items by ``order``, each on its own row with its position, then one row
    (position NULL) holding the count and sums of all the others, if there are any."""
    ranked = select(
        *per_item.c, func.row_number().over(order_by=order(per_item)).label("rank")
    ).subquery()
    position = case((ranked.c.rank <= TOP, ranked.c.rank)).label("position")
    positioned = select(position, *ranked.c).subquery()
    return (
        select(
            positioned.c.position,
            *(func.min(positioned.c[key]).label(key) for key in keys),
            *(total(positioned.c[name]).label(name) for name in measures),
            func.count().label("count"),
        )
        .group_by(positioned.c.position)
        .order_by(positioned.c.position.nulls_last())
    )


def split_top(rows: Sequence[Any]) -> tuple[list[Any], Any | None]:
    """Rows of ``top_n``: the ranked ones, and the row of the others (or None)."""
    ranked = [row for row in rows if row.position is not None]
    others = next((row for row in rows if row.position is None), None)
    return ranked, others


class UnknownOrg(LookupError):
    """The query names an organization that has no events and no keys."""


_ORG_EXISTS = compile_statement(select(exists().where(orgs.c.org_id == ORG)))


async def fetch_all(
    conn: psycopg.AsyncConnection, statements: Sequence[Compiled], params: dict[str, Any]
) -> list[list[Any]]:
    """Every statement's rows (as named tuples), all from one snapshot, sent in one pipeline
    so a section costs one round trip; for one organization, with the check that it exists."""
    one_org = params["org"] is not None
    # The transaction's BEGIN, its isolation and COMMIT go in the pipeline too.
    async with conn.pipeline(), conn.transaction():
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        cursors = []
        for statement in [_ORG_EXISTS, *statements] if one_org else statements:
            cursor = conn.cursor(row_factory=namedtuple_row)
            await cursor.execute(statement.sql, statement.params(params))
            cursors.append(cursor)
    results = [await cursor.fetchall() for cursor in cursors]
    if not one_org:
        return results
    if not results[0][0][0]:
        raise UnknownOrg(params["org"])
    return results[1:]
