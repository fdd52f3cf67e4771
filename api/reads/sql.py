"""SQL pieces every section's statements are built from: the counted rows of a rollup
family over a cover, buckets, integer sums, the documented tie order, top-N with the sum of
the rest, groups over time, and the statements of a section of counts (``Counted``).

Groups over time are rows of (position, key columns, name, bucket, figures, key_count): one
row per top group (position 1..TOP) and bucket, and rows of the others (position NULL).
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
    tuple_,
    union_all,
)

from api.core.tiers import QUEUED, RAW
from api.reads.query import BUCKET_STARTS, ORG, SERIES, TOP, TOTALS, Reach, Shape, in_cover
from api.storage.db import Compiled, compile_statement
from api.storage.rollups import Family
from api.storage.schema import identities


def narrowest(families: Sequence[Family], shape: Shape, *keys: str) -> Family:
    """The family with the fewest dimensions that has ``keys`` and the columns the filters
    read: the fewest rows to read. (Every family has org_id.)"""
    needed = (shape.columns() | set(keys)) - {"org_id"}
    return min(
        (family for family in families if needed <= set(family.dimensions)),
        key=lambda family: len(family.dimensions),
    )


# Conditions on a table beyond the shape's (a rollup or raw table: their columns share names).
Where = Callable[[FromClause], list[ColumnElement[bool]]]
# A grouping's tie order (by key ascending) of a relation with its key columns.
Order = Callable[[FromClause], list[ColumnElement]]
# Joins a name to each key of a relation with the key columns: the join and the name.
Named = Callable[[Subquery], tuple[FromClause, ColumnElement]]


def with_names(
    relation: FromClause, kind: ColumnElement, identity_id: ColumnElement, reach: Reach
) -> tuple[FromClause, ColumnElement]:
    """``relation`` (with org_id) outer-joined to its identities' names, by org, ``kind`` and
    ``identity_id``: the join and the name. For one organization the names are narrowed to
    it by the parameter too: Citus keeps a statement on one shard only when every table in
    it names the organization itself."""
    condition = and_(
        identities.c.org_id == relation.c.org_id,
        identities.c.kind == kind,
        identities.c.identity_id == identity_id,
    )
    if reach is Reach.ORG:
        condition = and_(condition, identities.c.org_id == ORG)
    return relation.outerjoin(identities, condition), identities.c.name


def covered(
    name: str, shape: Shape, family: Family, also: Where = lambda table: [], label: str = ""
) -> CTE:
    """Every counted row of a rollup family over cover ``name``, for the shape's organization
    and filters (and ``also``): its tiers' whole buckets (``at`` is the bucket start), the
    raw events at the edges and the queued events between them (``at`` is their time).
    Named ``label`` or after the cover."""

    def where(table: FromClause) -> list[ColumnElement[bool]]:
        return shape.where(table) + also(table)

    tiers = [
        in_cover(
            select(table.c.bucket_start.label("at"), *(table.c[c] for c in family.columns)),
            table.c.bucket_start,
            name,
            tier,
            where(table),
            shape.reach,
        )
        for tier, table in family.tables.items()
    ]
    raw = family.raw(
        lambda rows, table: in_cover(rows, table.c.time, name, RAW, where(table), shape.reach)
    )
    # Events not yet folded into the tiers (api.storage.folding), where the tiers are read.
    queued = family.raw(
        lambda rows, table: in_cover(rows, table.c.time, name, QUEUED, where(table), shape.reach),
        pending=True,
    )
    return union_all(*tiers, *raw, *queued).cte(label or f"{name}_facts")


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
    score: Callable[[FromClause], ColumnElement]  # what ranks groups, from the measures

    def facts(self, cover: str, shape: Shape, *keys: str) -> CTE:
        """The counted rows of cover ``cover``, from the narrowest family with ``keys``."""
        return covered(cover, shape, narrowest(self.families, shape, *keys))

    def series(self, shape: Shape, keys: Sequence[str] = ()) -> Select:
        """Per bucket (and key: the ``keys`` columns), the measures summed."""
        facts = self.facts(SERIES, shape, *keys)
        key_columns = [facts.c[key] for key in keys]
        bucket = bucket_of(facts.c.at).label("bucket")
        sums = (total(facts.c[name]).label(name) for name in self.measures)
        return select(*key_columns, bucket, *sums).group_by(*key_columns, bucket)

    def span_summary(self, shape: Shape) -> Compiled:
        """One row: each measure summed over the totals' cover (0 where there is nothing)."""
        facts = self.facts(TOTALS, shape)
        sums = (func.coalesce(total(facts.c[name]), 0).label(name) for name in self.measures)
        return compile_statement(select(*sums))

    def grouped(
        self, shape: Shape, keys: Sequence[str], order: Order, named: Named | None
    ) -> Select:
        """Groups over time (rows as the module says): the keys ranked by their score over
        the totals' cover, then the series of the first TOP keys alone, read through an index
        that leads with the key; the others' series is the whole series less theirs (counts
        subtract exactly), so groups and others add up to it bucket by bucket."""
        totals = self.facts(TOTALS, shape, *keys)
        per_key = select(*(totals.c[key] for key in keys), total(self.score(totals)).label("score"))
        scored = per_key.group_by(*(totals.c[key] for key in keys)).cte("scored")
        top = first_keys(scored, keys, order, named).cte("top")

        def in_top(table: FromClause) -> list[ColumnElement[bool]]:
            wanted = select(*(top.c[key] for key in keys))
            return [tuple_(*(table.c[key] for key in keys)).in_(wanted)]

        family = narrowest(self.families, shape, *keys)
        facts = covered(SERIES, shape, family, also=in_top, label="top_facts")
        bucket = bucket_of(facts.c.at).label("bucket")
        matched = and_(*(facts.c[key] == top.c[key] for key in keys))
        per_group = (
            select(
                top.c.rank.label("position"),
                *(func.min(top.c[key]).label(key) for key in keys),
                func.min(top.c.name).label("name"),
                bucket,
                *(total(facts.c[name]).label(name) for name in self.measures),
            )
            .select_from(facts.join(top, matched))
            .group_by(top.c.rank, bucket)
            .cte("per_group")
        )
        series = self.series(shape).subquery("whole_series")
        signed = union_all(
            select(series.c.bucket, *(series.c[name] for name in self.measures)),
            select(per_group.c.bucket, *(-per_group.c[name] for name in self.measures)),
        ).subquery("signed")
        key_count = select(func.count()).select_from(scored).scalar_subquery().label("key_count")
        others = select(
            null().label("position"),
            *(null().label(key) for key in keys),
            null().label("name"),
            signed.c.bucket,
            *(total(signed.c[name]).label(name) for name in self.measures),
            key_count,
        ).group_by(signed.c.bucket)
        return select(*per_group.c, key_count).union_all(others)


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


def first_keys(
    scored: FromClause, keys: Sequence[str], order: Order, named: Named | None
) -> Select:
    """The first TOP keys of ``scored`` (key columns and a score) by score, ties by ``order``:
    their key columns, name and rank."""
    name: ColumnElement = null()
    source: FromClause = scored
    if named is not None:
        source, name = named(scored)
    ranking = [scored.c.score.desc(), *order(scored)]
    # LIMIT, not a filter on the rank: the planner then knows the table is TOP rows small.
    return (
        select(
            *(scored.c[key] for key in keys),
            name.label("name"),
            func.row_number().over(order_by=ranking).label("rank"),
        )
        .select_from(source)
        .order_by(*ranking)
        .limit(TOP)
    )
