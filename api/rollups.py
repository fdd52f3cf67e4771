"""Rollup families: each family's tables (one per tier, api.schema) and the raw events it
counts, as columns by name. Reads use the raw columns at a window's edges; a rebuild
aggregates them whole."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Select, Table, case, cast, func, literal, select

from api.buckets import EPOCH
from api.schema import (
    LLM_MEASURES,
    PLATFORM_MEASURES,
    llm_by_identity,
    llm_by_model,
    llm_calls,
    llm_totals,
    message_events,
    platform_totals,
    thread_events,
)


def _count(condition: ColumnElement[bool]) -> ColumnElement:
    return case((condition, 1), else_=0)


@dataclass(frozen=True, slots=True, eq=False)
class Family:
    tables: dict[str, Table]  # tier → table
    dimensions: list[str]
    measures: list[str]
    # The raw tables it counts, each with its columns by name (org_id, dimensions, measures).
    sources: list[tuple[Table, dict[str, ColumnElement]]]

    @property
    def columns(self) -> list[str]:
        return ["org_id", *self.dimensions, *self.measures]

    def raw(self, where: Callable[[Table], list[ColumnElement[bool]]]) -> list[Select]:
        """Each raw table's rows meeting ``where``: their time as ``at``, then the columns."""
        return [
            select(table.c.time.label("at"), *(columns[c].label(c) for c in self.columns)).where(
                *where(table)
            )
            for table, columns in self.sources
        ]

    def rebuilt(self, width: timedelta, where: Callable[[Table], list[Any]]) -> Select:
        """A tier's rows computed from the raw events alone."""
        raw = self.raw(where)
        union = raw[0].union_all(*raw[1:]).subquery() if len(raw) > 1 else raw[0].subquery()
        bucket = func.date_bin(literal(width), union.c.at, literal(EPOCH)).label("bucket_start")
        keys = [union.c.org_id, *(union.c[name] for name in self.dimensions)]
        return select(
            union.c.org_id,
            bucket,
            *keys[1:],
            *(cast(func.sum(union.c[name]), BigInteger).label(name) for name in self.measures),
        ).group_by(*keys, bucket)


_LLM_COLUMNS = {
    **{name: llm_calls.c[name] for name in ("org_id", "identity_kind", "identity_id", "model")},
    "input_tokens": llm_calls.c.input_tokens,
    "cached_tokens": llm_calls.c.cached_tokens,
    "output_tokens": llm_calls.c.output_tokens,
    "successful_requests": _count(llm_calls.c.succeeded),
    "failed_requests": _count(~llm_calls.c.succeeded),
}


def _platform_columns(table: Table, threads: int, messages: int) -> dict[str, ColumnElement]:
    return {
        "org_id": table.c.org_id,
        "threads_created": literal(threads),
        "messages_sent": literal(messages),
    }


LLM_TOTALS = Family(llm_totals, [], LLM_MEASURES, [(llm_calls, _LLM_COLUMNS)])
LLM_BY_IDENTITY = Family(
    llm_by_identity, ["identity_kind", "identity_id"], LLM_MEASURES, [(llm_calls, _LLM_COLUMNS)]
)
LLM_BY_MODEL = Family(llm_by_model, ["model"], LLM_MEASURES, [(llm_calls, _LLM_COLUMNS)])
PLATFORM_TOTALS = Family(
    platform_totals,
    [],
    PLATFORM_MEASURES,
    [
        (thread_events, _platform_columns(thread_events, 1, 0)),
        (message_events, _platform_columns(message_events, 0, 1)),
    ],
)
ALL = (LLM_TOTALS, LLM_BY_IDENTITY, LLM_BY_MODEL, PLATFORM_TOTALS)
