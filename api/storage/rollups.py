"""Rollup families: each family's tables (one per tier, api.storage.schema) and the raw events it
counts, as columns by name. One aggregation serves ingest (over a batch's new rows) and
rebuild (over the raw tables); reads use the raw columns at a window's edges."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import (
    CTE,
    BigInteger,
    ColumnElement,
    FromClause,
    Select,
    Table,
    case,
    cast,
    func,
    literal,
    select,
)
from sqlalchemy.dialects.postgresql import insert

from api.core.buckets import origin_of
from api.storage.schema import (
    LLM_MEASURES,
    PLATFORM_MEASURES,
    llm_by_identity,
    llm_by_identity_model,
    llm_by_model,
    llm_calls,
    llm_totals,
    message_events,
    platform_by_identity,
    platform_totals,
    thread_events,
)


def _count(condition: ColumnElement[bool]) -> ColumnElement:
    return case((condition, 1), else_=0)


# A raw table's rows as a family counts them: columns by name (org_id, dimensions, measures)
# of a relation with the raw table's columns: the table itself, or a batch about to enter it.
Columns = Callable[[FromClause], dict[str, ColumnElement]]
# Narrows a select of a relation's rows (adds conditions or joins): the rows a use reads.
Narrow = Callable[[Select, FromClause], Select]


@dataclass(frozen=True, slots=True, eq=False)
class Family:
    tables: dict[str, Table]  # tier → table
    dimensions: list[str]
    measures: list[str]
    sources: list[tuple[Table, Columns]]  # the raw tables it counts

    @property
    def columns(self) -> list[str]:
        return ["org_id", *self.dimensions, *self.measures]

    def raw(
        self, narrow: Narrow, relations: Mapping[Table, FromClause] | None = None
    ) -> list[Select]:
        """Each raw table's rows (or those of the relation standing for it) as ``narrow``
        keeps them: their time as ``at``, then the family's columns."""
        selects = []
        for table, columns_of in self.sources:
            relation = relations[table] if relations is not None else table
            columns = columns_of(relation)
            rows = select(relation.c.time.label("at"), *(columns[c].label(c) for c in self.columns))
            selects.append(narrow(rows, relation))
        return selects

    def aggregated(
        self,
        width: timedelta,
        narrow: Narrow = lambda rows, relation: rows,
        relations: Mapping[Table, FromClause] | None = None,
    ) -> Select:
        """A tier's rows from raw rows: for a rebuild, the raw tables; for ingest, the batch.
        In key order, so concurrent upserts lock rows in one order."""
        raw = self.raw(narrow, relations)
        union = raw[0].union_all(*raw[1:]).subquery() if len(raw) > 1 else raw[0].subquery()
        bucket = func.date_bin(literal(width), union.c.at, literal(origin_of(width)))
        bucket = bucket.label("bucket_start")
        dimensions = [union.c[name] for name in self.dimensions]
        return (
            select(
                union.c.org_id,
                bucket,
                *dimensions,
                *(cast(func.sum(union.c[name]), BigInteger).label(name) for name in self.measures),
            )
            .group_by(union.c.org_id, bucket, *dimensions)
            .order_by(union.c.org_id, bucket, *dimensions)
        )


def adding(table: Table, rows: Select, measures: list[str]) -> CTE:
    """An upsert (as a CTE, for one statement with others) adding ``rows`` to ``table``:
    new keys are inserted, and ``measures`` of keys already there add up."""
    add = insert(table).from_select([c.name for c in table.columns], rows)
    add = add.on_conflict_do_update(
        index_elements=[c.name for c in table.primary_key.columns],
        set_={name: table.c[name] + add.excluded[name] for name in measures},
    )
    return add.cte(f"add_{table.name}")


def _llm_columns(calls: FromClause) -> dict[str, ColumnElement]:
    return {
        **{name: calls.c[name] for name in ("org_id", "identity_kind", "identity_id", "model")},
        "input_tokens": calls.c.input_tokens,
        "cached_tokens": calls.c.cached_tokens,
        "output_tokens": calls.c.output_tokens,
        "successful_requests": _count(calls.c.succeeded),
        "failed_requests": _count(~calls.c.succeeded),
    }


def _platform_columns(threads: int, messages: int) -> Columns:
    return lambda events: {
        **{name: events.c[name] for name in ("org_id", "identity_kind", "identity_id")},
        "threads_created": literal(threads),
        "messages_sent": literal(messages),
    }


LLM_TOTALS = Family(llm_totals, [], LLM_MEASURES, [(llm_calls, _llm_columns)])
LLM_BY_IDENTITY = Family(
    llm_by_identity, ["identity_kind", "identity_id"], LLM_MEASURES, [(llm_calls, _llm_columns)]
)
LLM_BY_MODEL = Family(llm_by_model, ["model"], LLM_MEASURES, [(llm_calls, _llm_columns)])
LLM_BY_IDENTITY_MODEL = Family(
    llm_by_identity_model,
    ["identity_kind", "identity_id", "model"],
    LLM_MEASURES,
    [(llm_calls, _llm_columns)],
)
_PLATFORM_SOURCES = [
    (thread_events, _platform_columns(1, 0)),
    (message_events, _platform_columns(0, 1)),
]
PLATFORM_TOTALS = Family(platform_totals, [], PLATFORM_MEASURES, _PLATFORM_SOURCES)
PLATFORM_BY_IDENTITY = Family(
    platform_by_identity, ["identity_kind", "identity_id"], PLATFORM_MEASURES, _PLATFORM_SOURCES
)
LLM = (LLM_TOTALS, LLM_BY_IDENTITY, LLM_BY_MODEL, LLM_BY_IDENTITY_MODEL)
PLATFORM = (PLATFORM_TOTALS, PLATFORM_BY_IDENTITY)
ALL = (*LLM, *PLATFORM)
