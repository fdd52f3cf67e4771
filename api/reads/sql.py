"""SQL pieces every section's statements are built from: the counted rows of a rollup
family over a cover, buckets, integer sums, the documented tie order, and top-N with the
sum of the rest.
"""

from collections.abc import Callable, Sequence

from sqlalchemy import (
    CTE,
    BigInteger,
    ColumnElement,
    Integer,
    Select,
    Subquery,
    case,
    cast,
    func,
    select,
    union_all,
)

from api.core.tiers import RAW
from api.reads.query import BUCKET_STARTS, TOP, Shape, in_cover
from api.storage.rollups import Family


def narrowest(families: Sequence[Family], shape: Shape, *keys: str) -> Family:
    """The family with the fewest dimensions that has ``keys`` and the columns the filters
    read: the fewest rows to read."""
    needed = shape.columns() | set(keys)
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
        ).where(*shape.where(table))
        for tier, table in family.tables.items()
    ]
    raw = family.raw(
        lambda rows, table: in_cover(rows, table.c.time, name, RAW).where(*shape.where(table))
    )
    return union_all(*tiers, *raw).cte(f"{name}_facts")


def bucket_index(time: ColumnElement) -> ColumnElement:
    """The position (from 1) of the window's bucket that holds ``time``."""
    return func.width_bucket(time, BUCKET_STARTS)


def bucket_of(time: ColumnElement) -> ColumnElement:
    """The start of the window's bucket that holds ``time``."""
    return BUCKET_STARTS[bucket_index(time)]


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
