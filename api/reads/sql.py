"""SQL pieces every section's statements are built from: the counted rows of a rollup
family over a cover, buckets, integer sums, the documented tie order, top-N with the sum of
the rest, groups over time, and the statements of a section of counts (``Counted``).
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import (
    CTE,
    BigInteger,
    ColumnElement,
    FromClause,
    Integer,
    Select,
    Subquery,
    and_,
    case,
    cast,
    func,
    null,
    select,
    union_all,
)

from api.core.tiers import RAW
from api.reads.query import BUCKET_STARTS, SERIES, TOP, TOTALS, Shape, in_cover
from api.storage.db import Compiled, compile_statement
from api.storage.rollups import Family


def narrowest(families: Sequence[Family], shape: Shape, *keys: str) -> Family:
    """The family with the fewest dimensions that has ``keys`` and the columns the filters
    read: the fewest rows to read. (Every family has org_id.)"""
    needed = (shape.columns() | set(keys)) - {"org_id"}
    return min(
        (family for family in families if needed <= set(family.dimensions)),
        key=lambda family: len(family.dimensions),
    )


def covered(name: str, shape: Shape, family: Family) -> CTE:
    """Every counted row of a rollup family over cover ``name``, for the shape's organization
    and filters: its tiers' whole buckets (``at`` is the bucket start) and the raw events at
    the edges (``at`` is their time)."""
    tiers = [
        in_cover(
            select(table.c.bucket_start.label("at"), *(table.c[c] for c in family.columns)),
            table.c.bucket_start,
            name,
            tier,
            shape.where(table),
        )
        for tier, table in family.tables.items()
    ]
    raw = family.raw(
        lambda rows, table: in_cover(rows, table.c.time, name, RAW, shape.where(table))
    )
    return union_all(*tiers, *raw).cte(f"{name}_facts")


def bucket_index(time: ColumnElement) -> ColumnElement:
    """The position (from 1) of the window's bucket that holds ``time``."""
    return func.width_bucket(time, BUCKET_STARTS)


def bucket_of(time: ColumnElement) -> ColumnElement:
    """The start of the window's bucket that holds ``time``."""
    return BUCKET_STARTS[bucket_index(time)]


@dataclass(frozen=True, slots=True, eq=False)
class Counted:
    """A section of counts (LLM, platform): its rollup families and measures, and the
    statements every such section reads through them."""

    families: Sequence[Family]
    measures: Sequence[str]

    def facts(self, cover: str, shape: Shape, *keys: str) -> CTE:
        """The counted rows of cover ``cover``, from the narrowest family with ``keys``."""
        return covered(cover, shape, narrowest(self.families, shape, *keys))

    def series(self, shape: Shape) -> Select:
        """Per bucket, the measures summed."""
        facts = self.facts(SERIES, shape)
        bucket = bucket_of(facts.c.at).label("bucket")
        sums = (total(facts.c[name]).label(name) for name in self.measures)
        return select(bucket, *sums).group_by(bucket)

    def span_summary(self, shape: Shape) -> Compiled:
        """One row: each measure summed over the totals' cover (0 where there is nothing)."""
        facts = self.facts(TOTALS, shape)
        sums = (func.coalesce(total(facts.c[name]), 0).label(name) for name in self.measures)
        return compile_statement(select(*sums))

    def keyed(self, shape: Shape, keys: tuple[str, ...]) -> Select:
        """The series' rows with their keys and bucket, for ``grouped`` to sum (summing them
        by key and bucket first would only make more rows to join)."""
        facts = self.facts(SERIES, shape, *keys)
        return select(
            *(facts.c[key] for key in keys),
            bucket_of(facts.c.at).label("bucket"),
            *(facts.c[name] for name in self.measures),
        )


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


def grouped(
    series: Select,
    keys: Sequence[str],
    figures: Sequence[str],
    score: Callable[[CTE], ColumnElement],
    order: Callable[[Subquery], list[ColumnElement]],
    *,
    named: Callable[[Subquery], tuple[FromClause, ColumnElement]] | None = None,
    held_only: bool = False,
) -> Select:
    """A series split by key (rows of key, bucket and figures) into the first TOP keys
    by their ``score`` over the window (ties by ``order``), each with its position, and one
    group (position NULL) of all the others; per group and bucket, the ``figures`` summed,
    and the number of keys there are. ``named`` joins a name to each key; ``held_only``
    leaves out keys that scored nothing (an agent holding nothing in the window: its rows,
    all zeros, fall among the others', which are a group only if other keys remain)."""
    keyed = series.cte("keyed")  # read twice: ranked, then summed by group
    per_key = select(*(keyed.c[key] for key in keys), func.sum(score(keyed)).label("score"))
    per_key = per_key.group_by(*(keyed.c[key] for key in keys))
    if held_only:
        per_key = per_key.having(func.sum(score(keyed)) > 0)
    scored = per_key.subquery("scored")
    name: ColumnElement = null()
    source: FromClause = scored
    if named is not None:
        source, name = named(scored)
    ranking = [scored.c.score.desc(), *order(scored)]
    # LIMIT, not a filter on the rank: the planner then knows the table is TOP rows small.
    top = (
        select(
            *(scored.c[key] for key in keys),
            name.label("name"),
            func.row_number().over(order_by=ranking).label("rank"),
        )
        .select_from(source)
        .order_by(*ranking)
        .limit(TOP)
        .subquery("top")
    )
    # The rows of the first TOP keys find them in a table of TOP rows; the others find none.
    matched = and_(*(keyed.c[key] == top.c[key] for key in keys))
    return (
        select(
            top.c.rank.label("position"),
            *(func.min(top.c[key]).label(key) for key in keys),
            func.min(top.c.name).label("name"),
            keyed.c.bucket,
            *(total(keyed.c[figure]).label(figure) for figure in figures),
            select(func.count()).select_from(scored).scalar_subquery().label("key_count"),
        )
        .select_from(keyed.outerjoin(top, matched))
        .group_by(top.c.rank, keyed.c.bucket)
    )
