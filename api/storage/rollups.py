"""Rollup families: each family's tables (one per tier, api.storage.schema) and the raw events it
counts, as columns by name. Rebuild aggregates the raw tables in SQL; the folder
(api.storage.folding) counts the rows it takes off the queues into the finest tier in the
process (``Family.finest_of_queued``) and sums each coarser tier from the one below; reads
use the raw columns at a window's edges and the queues' between."""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import itemgetter
from typing import Any

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

from api.core.buckets import floor_to, origin_of
from api.core.tiers import FINEST
from api.storage.schema import (
    LLM_MEASURES,
    PLATFORM_MEASURES,
    llm_by_identity,
    llm_by_identity_model,
    llm_by_model,
    llm_calls,
    llm_calls_pending,
    llm_totals,
    message_events,
    message_events_pending,
    platform_by_identity,
    platform_totals,
    thread_events,
    thread_events_pending,
)

# How a family counts one raw row, per measure: a column's value (its name), 1 where a
# boolean column is true or false ((name, value)), or a constant. One definition serves the
# SQL that counts raw tables (rebuild, the reads' edges) and ingest's count of a batch.
Count = str | tuple[str, bool] | int
# A raw table a family counts, and how it counts each of its rows (measure → Count).
Source = tuple[Table, Mapping[str, Count]]


def counted(count: Count, relation: FromClause) -> ColumnElement:
    if isinstance(count, str):
        return relation.c[count]
    if isinstance(count, tuple):
        column, value = count
        condition = relation.c[column] if value else ~relation.c[column]
        return case((condition, 1), else_=0)
    return literal(count)


def _counter(count: Count, columns: list[str]) -> Callable[[Sequence[Any]], int]:
    """``count`` of a raw row given as a tuple of ``columns``."""
    if isinstance(count, str):
        return itemgetter(columns.index(count))
    if isinstance(count, tuple):
        column, value = count
        flag = itemgetter(columns.index(column))
        return lambda row: 1 if flag(row) is value else 0
    return lambda row: count


# Narrows a select of a raw table's rows (adds conditions or joins): the rows a use reads.
Narrow = Callable[[Select, FromClause], Select]


@dataclass(frozen=True, slots=True, eq=False)
class Family:
    tables: dict[str, Table]  # tier → table
    dimensions: list[str]
    measures: list[str]
    sources: list[Source]  # the raw tables it counts

    @property
    def columns(self) -> list[str]:
        return ["org_id", *self.dimensions, *self.measures]

    def raw(self, narrow: Narrow, *, pending: bool = False) -> list[Select]:
        """Each raw table's rows (or, ``pending``, its queue's: api.storage.folding) as
        ``narrow`` keeps them: their time as ``at``, then the family's columns."""
        selects = []
        for source, counts in self.sources:
            table = PENDING[source] if pending else source
            dimensions = [table.c[name] for name in ("org_id", *self.dimensions)]
            measures = [counted(counts[name], table).label(name) for name in self.measures]
            selects.append(narrow(select(table.c.time.label("at"), *dimensions, *measures), table))
        return selects

    def aggregated(self, width: timedelta, narrow: Narrow = lambda rows, table: rows) -> Select:
        """A tier's rows from the raw tables' rows that ``narrow`` keeps, in key order."""
        raw = self.raw(narrow)
        union = raw[0].union_all(*raw[1:]) if len(raw) > 1 else raw[0]
        return self.binned(union.subquery(), width)

    def binned(self, rows: FromClause, width: timedelta) -> Select:
        """A tier's rows, in key order, from ``rows`` of the family's columns and ``at``
        (raw rows, or a finer tier's with their bucket start as ``at``)."""
        bucket = func.date_bin(literal(width), rows.c.at, literal(origin_of(width)))
        keys = [rows.c.org_id, bucket.label("bucket_start"), *(rows.c[d] for d in self.dimensions)]
        sums = (cast(func.sum(rows.c[name]), BigInteger).label(name) for name in self.measures)
        return select(*keys, *sums).group_by(*keys).order_by(*keys)

    def finest_of_queued(
        self, taken: Mapping[Table, Sequence[Sequence[Any]]]
    ) -> list[tuple[Any, ...]]:
        """The finest tier's rows (the table's columns) from rows taken off the queues
        (tuples in their queue table's column order), as ``aggregated`` counts them."""
        sums: dict[tuple[Any, ...], list[int]] = {}
        # The rows' times fall in a few buckets: each minute's bucket is found once (UTC
        # minutes are whole minutes since the epoch, so a minute lies in one bucket).
        buckets: dict[datetime, datetime] = {}
        for source, counts in self.sources:
            table = PENDING[source]
            columns = [column.name for column in table.columns]
            key_of = itemgetter(*(columns.index(name) for name in ("org_id", *self.dimensions)))
            time_of = itemgetter(columns.index("time"))
            counters = [_counter(counts[name], columns) for name in self.measures]
            for row in taken.get(table, ()):
                minute = time_of(row).replace(second=0, microsecond=0)
                bucket = buckets.get(minute)
                if bucket is None:
                    bucket = buckets[minute] = floor_to(minute, FINEST)
                key = (bucket, key_of(row))
                figures = sums.get(key)
                if figures is None:
                    figures = sums[key] = [0] * len(counters)
                for index, counter in enumerate(counters):
                    figures[index] += counter(row)
        if not self.dimensions:
            return [(org_id, bucket, *figures) for (bucket, org_id), figures in sums.items()]
        return [(key[0], bucket, *key[1:], *figures) for (bucket, key), figures in sums.items()]


def adding(table: Table, rows: Select, measures: list[str]) -> CTE:
    """An upsert (as a CTE, for one statement with others) adding ``rows`` to ``table``:
    new keys are inserted, and ``measures`` of keys already there add up."""
    add = insert(table).from_select([c.name for c in table.columns], rows)
    add = add.on_conflict_do_update(
        index_elements=[c.name for c in table.primary_key.columns],
        set_={name: table.c[name] + add.excluded[name] for name in measures},
    )
    return add.cte(f"add_{table.name}")


# Each counted raw table's queue of rows not yet in the rollups (the same column names).
PENDING = {
    llm_calls: llm_calls_pending,
    thread_events: thread_events_pending,
    message_events: message_events_pending,
}
_LLM_SOURCES: list[Source] = [
    (
        llm_calls,
        {
            "input_tokens": "input_tokens",
            "cached_tokens": "cached_tokens",
            "output_tokens": "output_tokens",
            "successful_requests": ("succeeded", True),
            "failed_requests": ("succeeded", False),
        },
    )
]
LLM_TOTALS = Family(llm_totals, [], LLM_MEASURES, _LLM_SOURCES)
LLM_BY_IDENTITY = Family(
    llm_by_identity, ["identity_kind", "identity_id"], LLM_MEASURES, _LLM_SOURCES
)
LLM_BY_MODEL = Family(llm_by_model, ["model"], LLM_MEASURES, _LLM_SOURCES)
LLM_BY_IDENTITY_MODEL = Family(
    llm_by_identity_model, ["identity_kind", "identity_id", "model"], LLM_MEASURES, _LLM_SOURCES
)
_PLATFORM_SOURCES: list[Source] = [
    (thread_events, {"threads_created": 1, "messages_sent": 0}),
    (message_events, {"threads_created": 0, "messages_sent": 1}),
]
PLATFORM_TOTALS = Family(platform_totals, [], PLATFORM_MEASURES, _PLATFORM_SOURCES)
PLATFORM_BY_IDENTITY = Family(
    platform_by_identity, ["identity_kind", "identity_id"], PLATFORM_MEASURES, _PLATFORM_SOURCES
)
LLM = (LLM_TOTALS, LLM_BY_IDENTITY, LLM_BY_MODEL, LLM_BY_IDENTITY_MODEL)
PLATFORM = (PLATFORM_TOTALS, PLATFORM_BY_IDENTITY)
ALL = (*LLM, *PLATFORM)
