"""A batch of validated events into the database: exactly once, in one transaction.

Steps, each one statement over the whole batch (a few for the segments): register the
organizations not yet known, record the receipts (the dedupe); then, for the events received
for the first time only: workload and volume events and the segments of every object they
touch (rebuilt from its events in the region the new ones change), identities' names, and
last the LLM calls and platform events, each kind in one statement together with their
queue rows, the thresholds' marks (api.storage.marks) and the exporter's queue
(api.storage.export_queue). Every statement reads its rows joined to their organizations
(api.storage.anchors), so on Citus it runs on the shards of the batch's organizations only.

Every step takes its row locks in key order, and the steps run in the same order in every
transaction, so concurrent batches wait for each other but never deadlock.
"""

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
import psycopg
from sqlalchemy import Table, and_, literal, or_, select, tuple_
from sqlalchemy.dialects.postgresql import insert

from api.core.events import (
    Event,
    LlmCallEvent,
    MessageSentEvent,
    ThreadCreatedEvent,
    VolumeDeletedEvent,
    VolumeProvisionedEvent,
    WorkloadAllocatedEvent,
    WorkloadReleasedEvent,
)
from api.storage import allocations, counters, export_queue, marks, rollups
from api.storage.anchors import anchored, batch_orgs, register_orgs
from api.storage.db import PLANNED_WITH_VALUES, Compiled, as_arrays, compile_statement, execute
from api.storage.event_rows import (
    envelope,
    identity_rows,
    llm_call_row,
    platform_row,
    volume_row,
    workload_row,
)
from api.storage.schema import (
    event_receipts,
    identities,
    llm_calls,
    message_events,
    thread_events,
    volume_events,
    workload_events,
)


class IngestResult(msgspec.Struct, frozen=True, kw_only=True):
    accepted: int
    duplicates: int


# The dedupe key (DESIGN §5): an event sent again is a duplicate whatever its time or data.
EventKey = tuple[str, str, str]


def event_key(event: Event) -> EventKey:
    return (event.subject, event.source, event.id)


async def ingest(conn: psycopg.AsyncConnection, events: Sequence[Event]) -> IngestResult:
    (result,) = await ingest_batches(conn, [events])
    return result


async def ingest_batches(
    conn: psycopg.AsyncConnection, batches: Sequence[Sequence[Event]]
) -> list[IngestResult]:
    """Several batches in one transaction, each counted as if stored after the ones before
    it: an event is accepted in the first batch that carries it, a duplicate in the others."""
    events = [event for batch in batches for event in batch]
    first_of_each_key = {}
    for event in events:
        first_of_each_key.setdefault(event_key(event), event)
    async with conn.transaction():
        # Planned with the batch's arrays, not by the server's generic plans: a generic plan
        # of the segment rebuild guessed the sizes of its regions and took 94 ms where a
        # custom one took 57, planning included (500 events of the load test's mix: 147 ->
        # 104 ms a batch; 4,000 LLM calls: 102 -> 93 ms).
        await conn.execute(PLANNED_WITH_VALUES)
        # Every organization a row of the batch will be joined to.
        await register_orgs(conn, {event.subject for event in events})
        received = await _insert_receipts(conn, list(first_of_each_key.values()))
        fresh = [event for key, event in first_of_each_key.items() if key in received]
        for write in _ALLOCATION_WRITES:
            await write.run(conn, fresh)
        for allocation in allocations.ALL:
            await allocations.rebuild_segments(conn, allocation, _touched(allocation, fresh))
        for write in _COUNTED_WRITES:
            await write.run(conn, fresh)
        await marks.mark(conn, fresh)
        await export_queue.queue(conn, fresh)
        # Last: the identities a batch names are mostly those every batch names, whose locks
        # are then held for the shortest time before the commit.
        await _UPSERT_IDENTITIES.run(conn, identity_rows(fresh))
    counters.count_ingested(fresh, len(events) - len(fresh))
    results = []
    for batch in batches:
        accepted = 0
        for event in batch:
            key = event_key(event)
            if key in received:
                received.discard(key)
                accepted += 1
        results.append(IngestResult(accepted=accepted, duplicates=len(batch) - accepted))
    return results


def _touched(allocation: allocations.Allocation, events: list[Event]) -> list[allocations.Touched]:
    """Each object the events concern, with the earliest and latest of their times."""
    spans: dict[tuple[str, str], tuple[datetime, datetime]] = {}
    for event in events:
        if allocation.concerns(event):
            key = (event.subject, allocation.object_id(event))
            earliest, latest = spans.get(key, (event.time, event.time))
            spans[key] = (min(earliest, event.time), max(latest, event.time))
    return [(*key, earliest, latest) for key, (earliest, latest) in spans.items()]


async def _insert_receipts(conn: psycopg.AsyncConnection, events: list[Event]) -> set[EventKey]:
    """The keys of the events stored for the first time: the first stored wins (§5)."""
    if not events:
        return set()
    arrays = as_arrays([(*event_key(e), e.time) for e in events], _RECEIPT_COLUMNS)
    cursor = await execute(
        conn, _INSERT_RECEIPTS.statement, **arrays, **batch_orgs(arrays["org_id"])
    )
    return {tuple(row) for row in await cursor.fetchall()}


@dataclass(frozen=True, slots=True)
class _BatchWrite:
    """An INSERT of many rows, sent as one array per column and written in key order."""

    statement: Compiled
    columns: list[str]

    async def run(self, conn: psycopg.AsyncConnection, rows: Iterable[tuple[Any, ...]]) -> None:
        rows = list(rows)
        if rows:
            arrays = as_arrays(rows, self.columns)
            await execute(conn, self.statement, **arrays, **batch_orgs(arrays["org_id"]))


def _from_arrays(
    table: Table, key: Sequence[str], build: Callable[[Any], Any] = lambda stmt: stmt
) -> _BatchWrite:
    names = [column.name for column in table.columns if column.server_default is None]
    rows = anchored([(name, table.c[name].type) for name in names])
    source = select(*(rows.c[name] for name in names)).order_by(*(rows.c[name] for name in key))
    statement = compile_statement(build(insert(table).from_select(names, source)))
    return _BatchWrite(statement=statement, columns=names)


def _primary_key(table: Table) -> list[str]:
    return [column.name for column in table.primary_key.columns]


_RECEIPT_KEY = _primary_key(event_receipts)
_RECEIPT_COLUMNS = [column.name for column in event_receipts.columns]
_INSERT_RECEIPTS = _from_arrays(
    event_receipts,
    _RECEIPT_KEY,
    lambda stmt: stmt.on_conflict_do_nothing().returning(
        *(event_receipts.c[name] for name in _RECEIPT_KEY)
    ),
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


@dataclass(frozen=True, slots=True)
class _RawTable:
    table: Table
    kinds: tuple[type, ...]
    row: Callable[[Any], tuple[Any, ...]]

    @property
    def columns(self) -> list[str]:
        """The columns a batch fills (not those the database fills: ``stored_at``)."""
        return [column.name for column in self.table.columns if column.server_default is None]

    @property
    def prefix(self) -> str:
        return f"{self.table.name}_"

    def rows(self, events: Iterable[Event]) -> list[tuple[Any, ...]]:
        return [envelope(e) + self.row(e) for e in events if isinstance(e, self.kinds)]


@dataclass(frozen=True, slots=True)
class _Write:
    """One statement: a batch's new events into their raw tables and, in the same statement
    (data-modifying CTEs), the counted ones into their queues (api.storage.folding), from
    which the folder counts them into the rollups."""

    statement: Compiled
    raw_tables: list[_RawTable]

    async def run(self, conn: psycopg.AsyncConnection, events: Sequence[Event]) -> None:
        arrays: dict[str, list[Any]] = {}
        org_ids: list[str] = []
        for raw in self.raw_tables:
            rows = raw.rows(events)
            arrays |= as_arrays(rows, [raw.prefix + name for name in raw.columns])
            org_ids += [row[0] for row in rows]
        if org_ids:
            await execute(conn, self.statement, **arrays, **batch_orgs(org_ids))


def _write(raw_tables: list[_RawTable]) -> _Write:
    steps = []
    for raw_table in raw_tables:
        table = raw_table.table
        # Each step reads the arrays itself: on Citus each data-modifying CTE runs as a
        # statement of its own on the shards, and one batch shared between them (a CTE)
        # would be computed on the coordinator and its rows sent to every step.
        for target in (table, rollups.PENDING.get(table)):
            if target is None:
                continue
            columns = [c.name for c in target.columns if c.server_default is None]
            batch = anchored(
                [(name, table.c[name].type) for name in columns], prefix=raw_table.prefix
            )
            in_key_order = select(*(batch.c[n] for n in columns)).order_by(
                *(batch.c[n] for n in _primary_key(target))
            )
            steps.append(
                insert(target).from_select(columns, in_key_order).cte(f"new_{target.name}")
            )
    statement = select(literal(len(steps))).add_cte(*steps)
    return _Write(statement=compile_statement(statement), raw_tables=raw_tables)


_ALLOCATION_WRITES = [
    _write(
        [_RawTable(workload_events, (WorkloadAllocatedEvent, WorkloadReleasedEvent), workload_row)]
    ),
    _write([_RawTable(volume_events, (VolumeProvisionedEvent, VolumeDeletedEvent), volume_row)]),
]
_COUNTED_WRITES = [
    _write([_RawTable(llm_calls, (LlmCallEvent,), llm_call_row)]),
    _write(
        [
            _RawTable(thread_events, (ThreadCreatedEvent,), platform_row),
            _RawTable(message_events, (MessageSentEvent,), platform_row),
        ]
    ),
]
