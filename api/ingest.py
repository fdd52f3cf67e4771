"""A batch of validated events into the database: exactly once, in one transaction.

Steps, each one statement over the whole batch: register the organizations, record the
receipts (the dedupe), store the raw rows of the events actually received for the first
time, then bring the derived tables up to date from those rows alone: identities' names,
the rollups of every tier, and the allocation segments of every workload and volume touched.

Every step takes its row locks in key order, and the steps run in the same order in every
transaction, so concurrent batches wait for each other but never deadlock.
"""

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import msgspec
import psycopg
from sqlalchemy import Table, and_, or_, select, tuple_
from sqlalchemy.dialects.postgresql import insert

from api import allocations
from api.buckets import floor_to
from api.db import Compiled, as_arrays, compile_statement, execute, unnest_rows
from api.events import (
    Agent,
    Event,
    Identity,
    LlmCallEvent,
    MessageSentEvent,
    ThreadCreatedEvent,
    VolumeDeletedEvent,
    VolumeProvisionedEvent,
    WorkloadAllocatedEvent,
    WorkloadReleasedEvent,
)
from api.schema import (
    event_receipts,
    identities,
    llm_by_identity,
    llm_by_model,
    llm_calls,
    llm_totals,
    message_events,
    orgs,
    platform_totals,
    thread_events,
    volume_events,
    workload_events,
)
from api.tiers import TIERS


class IngestResult(msgspec.Struct, frozen=True, kw_only=True):
    accepted: int
    duplicates: int


EventKey = tuple[str, str, str]


def event_key(event: Event) -> EventKey:
    return (event.subject, event.source, event.id)


async def ingest(conn: psycopg.AsyncConnection, events: Sequence[Event]) -> IngestResult:
    first_of_each_key = {}
    for event in events:
        first_of_each_key.setdefault(event_key(event), event)
    async with conn.transaction():
        await _INSERT_ORGS.run(conn, [(org,) for org in {e.subject for e in events}])
        received = await _insert_receipts(conn, list(first_of_each_key))
        fresh = [event for key, event in first_of_each_key.items() if key in received]
        for raw_table in _RAW_TABLES:
            await raw_table.insert.run(conn, raw_table.rows(fresh))
        await _UPSERT_IDENTITIES.run(conn, _identity_rows(fresh))
        for rollup in _ROLLUPS:
            for tier, width in TIERS.items():
                await rollup.writes[tier].run(conn, rollup.rows(fresh, width))
        for allocation in allocations.ALL:
            touched = {
                (e.subject, allocation.object_id(e)) for e in fresh if allocation.concerns(e)
            }
            await allocations.rebuild_segments(conn, allocation, touched)
    return IngestResult(accepted=len(fresh), duplicates=len(events) - len(fresh))


async def _insert_receipts(conn: psycopg.AsyncConnection, keys: list[EventKey]) -> set[EventKey]:
    if not keys:
        return set()
    cursor = await execute(conn, _INSERT_RECEIPTS.statement, **as_arrays(keys, _RECEIPT_COLUMNS))
    return {tuple(row) for row in await cursor.fetchall()}


@dataclass(frozen=True, slots=True)
class _BatchWrite:
    """An INSERT of many rows, sent as one array per column and written in key order."""

    statement: Compiled
    columns: list[str]

    async def run(self, conn: psycopg.AsyncConnection, rows: Iterable[tuple[Any, ...]]) -> None:
        rows = list(rows)
        if rows:
            await execute(conn, self.statement, **as_arrays(rows, self.columns))


def _from_arrays(
    table: Table, key: Sequence[str], build: Callable[[Any], Any] = lambda stmt: stmt
) -> _BatchWrite:
    names = [column.name for column in table.columns if column.server_default is None]
    rows = unnest_rows([(name, table.c[name].type) for name in names])
    source = select(*rows.c).order_by(*(rows.c[name] for name in key))
    statement = compile_statement(build(insert(table).from_select(names, source)))
    return _BatchWrite(statement=statement, columns=names)


def _primary_key(table: Table) -> list[str]:
    return [column.name for column in table.primary_key.columns]


def _add_counters(table: Table) -> _BatchWrite:
    key = _primary_key(table)
    counters = [column.name for column in table.columns if column.name not in key]
    return _from_arrays(
        table,
        key,
        lambda stmt: stmt.on_conflict_do_update(
            index_elements=key,
            set_={name: table.c[name] + stmt.excluded[name] for name in counters},
        ),
    )


_RECEIPT_COLUMNS = _primary_key(event_receipts)
_INSERT_ORGS = _from_arrays(orgs, ["org_id"], lambda stmt: stmt.on_conflict_do_nothing())
_INSERT_RECEIPTS = _from_arrays(
    event_receipts,
    _RECEIPT_COLUMNS,
    lambda stmt: stmt.on_conflict_do_nothing().returning(*event_receipts.c),
)


def _newer_name(stmt: Any) -> Any:
    current, new = identities.c, stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=_primary_key(identities),
        set_={name: new[name] for name in ("name", "name_time", "name_source", "name_event_id")},
        where=and_(
            new.name.is_not(None),
            or_(
                current.name_time.is_(None),
                tuple_(current.name_time, current.name_source, current.name_event_id)
                < tuple_(new.name_time, new.name_source, new.name_event_id),
            ),
        ),
    )


_UPSERT_IDENTITIES = _from_arrays(identities, _primary_key(identities), _newer_name)

# Raw rows: one function per table from an event to the table's columns after the key.


def _envelope(event: Event) -> tuple[str, str, str, datetime]:
    return (event.subject, event.source, event.id, event.time)


def _llm_call_row(event: LlmCallEvent) -> tuple[Any, ...]:
    data = event.data
    return (
        data.identity.kind,
        data.identity.id,
        data.model,
        data.input_tokens,
        data.cached_tokens,
        data.output_tokens,
        data.succeeded,
    )


def _workload_row(event: WorkloadAllocatedEvent | WorkloadReleasedEvent) -> tuple[Any, ...]:
    data = event.data
    if isinstance(event, WorkloadAllocatedEvent):
        return (data.workload_id, "allocated", data.agent.id, data.cpu_cores, data.memory_bytes)
    return (data.workload_id, "released", None, None, None)


def _volume_row(event: VolumeProvisionedEvent | VolumeDeletedEvent) -> tuple[Any, ...]:
    data = event.data
    if isinstance(event, VolumeProvisionedEvent):
        return (data.volume_id, "provisioned", data.agent.id, data.size_bytes)
    return (data.volume_id, "deleted", None, None)


def _platform_row(event: ThreadCreatedEvent | MessageSentEvent) -> tuple[Any, ...]:
    return (event.data.thread_id, event.data.identity.kind, event.data.identity.id)


@dataclass(frozen=True, slots=True)
class _RawTable:
    insert: _BatchWrite
    kinds: tuple[type, ...]
    row: Callable[[Any], tuple[Any, ...]]

    def rows(self, events: Iterable[Event]) -> Iterable[tuple[Any, ...]]:
        return (_envelope(e) + self.row(e) for e in events if isinstance(e, self.kinds))


def _raw_table(table: Table, kinds: tuple[type, ...], row: Callable[[Any], Any]) -> _RawTable:
    return _RawTable(insert=_from_arrays(table, _primary_key(table)), kinds=kinds, row=row)


_RAW_TABLES = [
    _raw_table(llm_calls, (LlmCallEvent,), _llm_call_row),
    _raw_table(workload_events, (WorkloadAllocatedEvent, WorkloadReleasedEvent), _workload_row),
    _raw_table(volume_events, (VolumeProvisionedEvent, VolumeDeletedEvent), _volume_row),
    _raw_table(thread_events, (ThreadCreatedEvent,), _platform_row),
    _raw_table(message_events, (MessageSentEvent,), _platform_row),
]


# Derived rows.


def _named_identity(event: Event) -> Identity | None:
    if isinstance(event, LlmCallEvent | ThreadCreatedEvent | MessageSentEvent):
        return event.data.identity
    if isinstance(event, WorkloadAllocatedEvent | VolumeProvisionedEvent):
        agent: Agent = event.data.agent
        return Identity(kind="agent", id=agent.id, name=agent.name)
    return None


def _identity_rows(events: Iterable[Event]) -> list[tuple[Any, ...]]:
    """One row per identity: the name on its latest named event (by time, source, id)."""
    latest: dict[tuple[str, str, str], tuple[Any, ...]] = {}
    for event in events:
        identity = _named_identity(event)
        if identity is None:
            continue
        key = (event.subject, identity.kind, identity.id)
        if identity.name is None:
            latest.setdefault(key, (None, None, None, None))
            continue
        candidate = (identity.name, event.time, event.source, event.id)
        current = latest.get(key)
        if current is None or current[0] is None or current[1:] < candidate[1:]:
            latest[key] = candidate
    return [key + value for key, value in latest.items()]


@dataclass(frozen=True, slots=True)
class _Rollup:
    """A rollup family (api.schema) as ingest feeds it: which events it counts, under which
    dimensions, with which figures."""

    writes: dict[str, _BatchWrite]  # tier → the upsert adding to its counters
    kinds: tuple[type, ...]
    dimensions: Callable[[Any], tuple[str, ...]]
    figures: Callable[[Any], tuple[int, ...]]

    def rows(self, events: Iterable[Event], width: timedelta) -> list[tuple[Any, ...]]:
        sums: dict[tuple[Any, ...], list[int]] = {}
        for event in events:
            if not isinstance(event, self.kinds):
                continue
            key = (event.subject, floor_to(event.time, width), *self.dimensions(event))
            figures = self.figures(event)
            total = sums.setdefault(key, [0] * len(figures))
            for position, figure in enumerate(figures):
                total[position] += figure
        return [key + tuple(figures) for key, figures in sums.items()]


def _rollup(
    tables: dict[str, Table],
    kinds: tuple[type, ...],
    dimensions: Callable[[Any], tuple[str, ...]],
    figures: Callable[[Any], tuple[int, ...]],
) -> _Rollup:
    return _Rollup(
        writes={tier: _add_counters(table) for tier, table in tables.items()},
        kinds=kinds,
        dimensions=dimensions,
        figures=figures,
    )


def _llm_figures(event: LlmCallEvent) -> tuple[int, ...]:
    data = event.data
    return (
        data.input_tokens,
        data.cached_tokens,
        data.output_tokens,
        int(data.succeeded),
        int(not data.succeeded),
    )


_ROLLUPS = [
    _rollup(llm_totals, (LlmCallEvent,), lambda event: (), _llm_figures),
    _rollup(
        llm_by_identity,
        (LlmCallEvent,),
        lambda event: (event.data.identity.kind, event.data.identity.id),
        _llm_figures,
    ),
    _rollup(llm_by_model, (LlmCallEvent,), lambda event: (event.data.model,), _llm_figures),
    _rollup(
        platform_totals,
        (ThreadCreatedEvent, MessageSentEvent),
        lambda event: (),
        lambda event: (1, 0) if isinstance(event, ThreadCreatedEvent) else (0, 1),
    ),
]
