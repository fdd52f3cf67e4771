"""Allocation segments of workloads and volumes, rebuilt from their stored events.

An object's events, ordered by time (ties: the allocating event before the
releasing one, then by id), each hold their reservation until the next event; a release
holds nothing; after its last event an allocated object holds until the query's as_of.
A segment is one such stretch of non-zero length.

Rebuilding an object from all of its events, rather than patching its segments, makes the
result independent of arrival order and batching. Objects have few events, so it is cheap.
The statement that removes an object's segments also carries the difference between them
and the rebuilt ones to the reservation rollups (api.storage.reservations).
A transaction-scoped advisory lock per object serializes concurrent rebuilds; the rebuild
runs after the lock is granted, so in READ COMMITTED it sees every event committed before.
"""

from collections.abc import Callable, Set
from dataclasses import dataclass

import psycopg
from sqlalchemy import (
    Column,
    Delete,
    Select,
    Table,
    Text,
    delete,
    func,
    literal,
    or_,
    select,
    tuple_,
    union_all,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.sql.expression import Executable

from api.core.events import (
    Event,
    VolumeDeletedEvent,
    VolumeProvisionedEvent,
    WorkloadAllocatedEvent,
    WorkloadReleasedEvent,
)
from api.storage import reservations
from api.storage.db import Compiled, as_arrays, compile_statement, execute, unnest_rows
from api.storage.schema import volume_events, workload_events

_OBJECTS = ["org_id", "object_id"]
_SEGMENT_FRAME = ["org_id", "start_time", "end_time", "agent_id"]


@dataclass(frozen=True, slots=True)
class Allocation:
    events: Table  # the raw events of its objects
    object_column: str
    event_kinds: tuple[type, ...]
    reservations: reservations.Reservations
    object_id: Callable[[Event], str]
    lock: Compiled
    clear: Compiled
    fill: Compiled

    def concerns(self, event: Event) -> bool:
        return isinstance(event, self.event_kinds)


async def rebuild_segments(
    conn: psycopg.AsyncConnection,
    allocation: Allocation,
    objects: Set[tuple[str, str]],
    *,
    lock: bool = True,
) -> None:
    """``lock=False``: the caller already holds the tables (a full rebuild: one advisory lock
    per object would overflow PostgreSQL's lock table)."""
    if not objects:
        return
    arrays = as_arrays(sorted(objects), _OBJECTS)
    if lock:
        await execute(conn, allocation.lock, **arrays)
    await execute(conn, allocation.clear, **arrays)
    await execute(conn, allocation.fill, **arrays)


def _replacing(reserved: reservations.Reservations, removal: Delete, rebuilt: Select) -> Executable:
    """The statement removing the objects' segments and carrying to the reservation rollups,
    in one upsert per row, the difference to the segments ``rebuilt`` (inserted next, by a
    statement of their own: one statement cannot delete and insert the same key)."""
    removed = removal.returning(*reserved.segments.c).cte("removed")
    made = rebuilt.cte("made")
    changed = union_all(reserved.changes_of(removed, -1), reserved.changes_of(made, 1))
    changed = changed.cte("changed")
    upserts = reserved.maintained(changed)
    return select(func.count()).select_from(removed).add_cte(made, changed, *upserts)


def _allocation(
    events: Table,
    reserved: reservations.Reservations,
    object_column: str,
    allocating_action: str,
    event_kinds: tuple[type, ...],
) -> Allocation:
    segments = reserved.segments
    touched = unnest_rows([(name, Text()) for name in _OBJECTS])
    touched_objects = select(touched.c.org_id, touched.c.object_id)

    lock_key = func.hashtextextended(
        literal(f"{segments.name}/") + touched.c.org_id + literal("/") + touched.c.object_id, 0
    ).label("lock_key")
    keys = select(lock_key).distinct().order_by(lock_key).subquery()
    lock = select(func.pg_advisory_xact_lock(keys.c.lock_key)).order_by(keys.c.lock_key)

    clear = delete(segments).where(
        tuple_(segments.c.org_id, segments.c[object_column]).in_(touched_objects)
    )

    object_of: Column = events.c[object_column]
    sizes = [c.name for c in segments.columns if c.name not in [*_SEGMENT_FRAME, object_column]]
    ordered = (
        select(
            events.c.org_id,
            object_of,
            events.c.action,
            events.c.agent_id,
            *(events.c[name] for name in sizes),
            events.c.time.label("start_time"),
            func.lead(events.c.time)
            .over(
                partition_by=[events.c.org_id, object_of],
                order_by=[
                    events.c.time,
                    events.c.action != allocating_action,
                    events.c.event_id,
                    events.c.source,
                ],
            )
            .label("end_time"),
        )
        .where(tuple_(events.c.org_id, object_of).in_(touched_objects))
        .subquery()
    )
    columns = ["org_id", object_column, "start_time", "end_time", "agent_id", *sizes]
    rebuilt = select(*(ordered.c[name] for name in columns)).where(
        ordered.c.action == allocating_action,
        or_(ordered.c.end_time.is_(None), ordered.c.end_time > ordered.c.start_time),
    )
    return Allocation(
        events=events,
        object_column=object_column,
        event_kinds=event_kinds,
        reservations=reserved,
        object_id=lambda event: getattr(event.data, object_column),
        lock=compile_statement(lock),
        clear=compile_statement(_replacing(reserved, clear, rebuilt)),
        fill=compile_statement(insert(segments).from_select(columns, rebuilt)),
    )


WORKLOADS = _allocation(
    workload_events,
    reservations.WORKLOADS,
    "workload_id",
    "allocated",
    (WorkloadAllocatedEvent, WorkloadReleasedEvent),
)
VOLUMES = _allocation(
    volume_events,
    reservations.VOLUMES,
    "volume_id",
    "provisioned",
    (VolumeProvisionedEvent, VolumeDeletedEvent),
)
ALL = (WORKLOADS, VOLUMES)
