"""Allocation segments of workloads and volumes, rebuilt from their stored events.

An object's events, ordered by time (ties: the allocating event before the
releasing one, then by id), each hold their reservation until the next event; a release
holds nothing; after its last event an allocated object holds until the query's as_of.
A segment is one such stretch of non-zero length.

Segments are rebuilt from the stored events, not patched, so the result is independent of
arrival order and batching; but only in the region new events can change: from the last
event before the earliest new one to the first event after the latest new one. A segment
outside it starts and ends at the same events as before. Events arriving in time order
(the usual case) rebuild one or two segments, however many events the object has.
Before a region's segments are replaced, the difference between them and the rebuilt ones
is carried to the reservation rollups (api.storage.reservations).
A transaction-scoped advisory lock per object serializes concurrent rebuilds; the rebuild
runs after the lock is granted, so in READ COMMITTED it sees every event committed before.
"""

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby
from operator import itemgetter
from typing import Any

import psycopg
from sqlalchemy import (
    Column,
    ColumnElement,
    DateTime,
    Numeric,
    Select,
    Subquery,
    Table,
    Text,
    and_,
    any_,
    cast,
    delete,
    func,
    literal,
    literal_column,
    or_,
    select,
    true,
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
from api.storage.anchors import BATCH_ORGS, anchored, batch_orgs
from api.storage.db import (
    CITUS_PRESENT,
    Compiled,
    as_arrays,
    compile_statement,
    execute,
    unnest_rows,
)
from api.storage.schema import volume_events, workload_events

_TIME = DateTime(timezone=True)
# The objects to rebuild, and the regions found for them: each sent as arrays, one per column.
_TOUCHED = [("org_id", Text()), ("object_id", Text()), ("earliest", _TIME), ("latest", _TIME)]
_REGION = [("org_id", Text()), ("object_id", Text()), ("first", _TIME), ("last", _TIME)]
_REGION_PREFIX = "region_"
_SEGMENT_FRAME = ["org_id", "start_time", "end_time", "agent_id"]
# A row's physical address, unique within a table that is not partitioned, as the
# segments' tables are not.
_CTID = "ctid"


@dataclass(frozen=True, slots=True)
class Lookups:
    """The statements that look the objects' events and segments up, in one of two forms
    (see ``_lookups``)."""

    regions: Compiled
    changes: Compiled  # the regions' reservation changes: the rebuilt segments' less the old
    clear: Compiled
    fill: Compiled


@dataclass(frozen=True, slots=True)
class Allocation:
    events: Table  # the raw events of its objects
    object_column: str
    event_kinds: tuple[type, ...]
    reservations: reservations.Reservations
    object_id: Callable[[Event], str]
    lock: Compiled
    account: Compiled  # the changes added to the reservation rollups, from arrays
    on_postgres: Lookups
    on_citus: Lookups

    def concerns(self, event: Event) -> bool:
        return isinstance(event, self.event_kinds)


# An object whose segments to rebuild, and the earliest and latest time of its new events
# (None and None: all of its segments).
Touched = tuple[str, str, datetime | None, datetime | None]


async def rebuild_segments(
    conn: psycopg.AsyncConnection,
    allocation: Allocation,
    objects: Iterable[Touched],
    *,
    lock: bool = True,
) -> None:
    """``lock=False``: the caller already holds the tables (a full rebuild: one advisory lock
    per object would overflow PostgreSQL's lock table).

    On Citus an organization at a time, so that each statement runs on its shard alone (a
    router statement): Citus refuses the per-region lookups (a correlated subquery with
    OFFSET) in a statement over several shards. On PostgreSQL every organization at once:
    per organization, a batch of the load test's mix (four organizations) took 30% longer."""
    objects = sorted(objects, key=lambda touched: touched[:2])
    if not objects:  # a batch without this allocation's events: nothing to look up
        return
    if await (await conn.execute(CITUS_PRESENT)).fetchone() is None:
        await _rebuild(conn, allocation, allocation.on_postgres, objects, lock)
        return
    for _, of_org in groupby(objects, key=itemgetter(0)):
        await _rebuild(conn, allocation, allocation.on_citus, list(of_org), lock)


async def _rebuild(
    conn: psycopg.AsyncConnection,
    allocation: Allocation,
    lookups: Lookups,
    objects: list[Touched],
    lock: bool,
) -> None:
    """Five statements: the regions to rebuild, found once and sent back as parameters (a
    region shared between statements as a CTE would be computed on the Citus coordinator);
    the reservation changes from the region's segments to the rebuilt ones, found once and
    sent back as parameters too (each of the rollups' upserts reads them: shared in one
    statement, each recomputed them); the rollups moved by them; the region's segments
    removed; the rebuilt ones inserted."""
    arrays = as_arrays(objects, [name for name, _ in _TOUCHED])
    if lock:
        await execute(conn, allocation.lock, **arrays)
    orgs = batch_orgs(arrays["org_id"])
    cursor = await execute(conn, lookups.regions, **arrays, **orgs)
    regions = as_arrays(await cursor.fetchall(), [_REGION_PREFIX + name for name, _ in _REGION])
    cursor = await execute(conn, lookups.changes, **regions, **orgs)
    changed = await cursor.fetchall()
    if changed:
        columns = [_CHANGE_PREFIX + name for name, _ in _change_columns(allocation.reservations)]
        await execute(conn, allocation.account, **as_arrays(changed, columns), **orgs)
    for statement in (lookups.clear, lookups.fill):
        await execute(conn, statement, **regions, **orgs)


def _allocation(
    events: Table,
    reserved: reservations.Reservations,
    object_column: str,
    allocating_action: str,
    event_kinds: tuple[type, ...],
) -> Allocation:
    # The locks are the coordinator's (no table is read): every write goes through it.
    to_lock = unnest_rows(_TOUCHED)
    lock_key = func.hashtextextended(
        literal(f"{reserved.segments.name}/")
        + to_lock.c.org_id
        + literal("/")
        + to_lock.c.object_id,
        0,
    ).label("lock_key")
    keys = select(lock_key).distinct().order_by(lock_key).subquery()
    lock = select(func.pg_advisory_xact_lock(keys.c.lock_key)).order_by(keys.c.lock_key)
    form = (events, reserved, object_column, allocating_action)
    return Allocation(
        events=events,
        object_column=object_column,
        event_kinds=event_kinds,
        reservations=reserved,
        object_id=lambda event: getattr(event.data, object_column),
        lock=compile_statement(lock),
        account=compile_statement(_accounting(reserved)),
        on_postgres=_lookups(*form, narrowed=False),
        on_citus=_lookups(*form, narrowed=True),
    )


def _lookups(
    events: Table,
    reserved: reservations.Reservations,
    object_column: str,
    allocating_action: str,
    *,
    narrowed: bool,
) -> Lookups:
    """Every lookup of an object's rows is a subquery correlated to its region (or touched
    object), so that the regions drive, each an index range scan of its object.

    ``narrowed``: each lookup also names the batch's organizations itself, as Citus needs
    to keep the lookup on their shards. PostgreSQL plans with those names what it knows of
    them: nothing for a new organization (its rows came after the last ANALYZE, as on any
    large table, where autoanalyze waits for a tenth of the rows to change). Sure that the
    organization holds one row, the planner took any index starting with org_id as good as
    the object's (org_id, object, time): the segments' (org_id, start_time) index read the
    organization's every segment of the day once per region, and a batch of the load
    test's mix took 15 s once the organization had a few thousand segments. Without the
    names, the lookup is sized as an average organization's, and the object's index wins
    whatever the statistics say; the regions are narrowed to the batch's organizations
    anyway (``anchored``)."""
    segments = reserved.segments
    object_of: Column = events.c[object_column]
    touched = anchored(_TOUCHED)

    def of_batch(table: Table) -> list[ColumnElement[bool]]:
        return [table.c.org_id == any_(BATCH_ORGS)] if narrowed else []

    def event_time(aggregate: Any, condition: ColumnElement[bool]) -> ColumnElement:
        same_object = and_(events.c.org_id == touched.c.org_id, object_of == touched.c.object_id)
        found = select(aggregate(events.c.time)).where(same_object, *of_batch(events), condition)
        return found.scalar_subquery()

    # The region each object's new events can change: from the last event before the
    # earliest new one (or that one) to the first after the latest; None where there is
    # none (unbounded).
    find_regions = select(
        touched.c.org_id,
        touched.c.object_id,
        func.coalesce(
            event_time(func.max, events.c.time < touched.c.earliest), touched.c.earliest
        ).label("first"),
        event_time(func.min, events.c.time > touched.c.latest).label("last"),
    ).order_by(touched.c.org_id, touched.c.object_id)
    found = anchored(_REGION, prefix=_REGION_PREFIX)
    # Unbounded as infinity, so that the bounds are plain index conditions. Constants, not
    # parameters: Citus refuses a text parameter cast to a time (that cast depends on the
    # session's time zone) in a COALESCE of a data-modifying statement.
    regions = select(
        found.c.org_id,
        found.c.object_id,
        func.coalesce(found.c.first, cast(literal_column("'-infinity'"), _TIME)).label("first"),
        func.coalesce(found.c["last"], cast(literal_column("'infinity'"), _TIME)).label("last"),
    ).subquery("regions")

    def in_regions(
        table: Table,
        object_id: Column,
        time: Column,
        *,
        last_included: bool,
        addressed: bool,
        columns: Sequence[str] | None = None,
    ) -> Subquery:
        """Each region's rows of ``table`` (its object's, ``time`` in the region), with the
        region's end, as a FROM clause: a LATERAL subquery per region, which OFFSET 0 keeps
        one. Flattened into a join, the planner sized a new organization's rows from the
        statistics and scanned the organization's segments once per region, or every
        region once per segment. ``addressed``: with each row's address, as
        ``row_address``. ``columns``: those alone (default every one)."""
        before_last = time <= regions.c.last if last_included else time < regions.c.last
        chosen = table.columns if columns is None else [table.c[name] for name in columns]
        rows = (
            select(*chosen, *([literal_column(_CTID).label("row_address")] if addressed else []))
            .where(
                *of_batch(table),
                table.c.org_id == regions.c.org_id,
                object_id == regions.c.object_id,
                time >= regions.c.first,
                before_last,
            )
            .offset(0)
            .lateral()
        )
        return select(regions.c.last, rows).select_from(regions.join(rows, true())).subquery()

    in_place = in_regions(
        segments,
        segments.c[object_column],
        segments.c.start_time,
        last_included=False,
        addressed=True,
    )
    sizes = [c.name for c in segments.columns if c.name not in [*_SEGMENT_FRAME, object_column]]
    # The region's events and the first after it: the last segment's end. The columns read
    # named: migration 0013 rebuilds with this code on a table without the later ones.
    read = ["org_id", "source", "event_id", "time", object_column, "action", "agent_id", *sizes]
    found_events = in_regions(
        events, object_of, events.c.time, last_included=True, addressed=False, columns=read
    )
    ordered = select(
        found_events.c.org_id,
        found_events.c[object_column],
        found_events.c.action,
        found_events.c.agent_id,
        *(found_events.c[name] for name in sizes),
        found_events.c.time.label("start_time"),
        func.lead(found_events.c.time)
        .over(
            partition_by=[found_events.c.org_id, found_events.c[object_column]],
            order_by=[
                found_events.c.time,
                found_events.c.action != allocating_action,
                found_events.c.event_id,
                found_events.c.source,
            ],
        )
        .label("end_time"),
        found_events.c.last,
    ).subquery()
    columns = ["org_id", object_column, "start_time", "end_time", "agent_id", *sizes]
    rebuilt = select(*(ordered.c[name] for name in columns)).where(
        ordered.c.action == allocating_action,
        or_(ordered.c.end_time.is_(None), ordered.c.end_time > ordered.c.start_time),
        ordered.c.start_time < ordered.c.last,
    )
    return Lookups(
        regions=compile_statement(find_regions),
        changes=compile_statement(_changes(reserved, in_place, rebuilt)),
        # The region's segments named by their addresses, gathered once (an InitPlan) and
        # then fetched directly (a TID scan). Matched by key instead, the DELETE was a join
        # the planner could turn around: sure that a new organization holds no segment, it
        # scanned the organization's segments and looked every region up again for each:
        # one batch took a minute on the bench's data. The addresses stay the rows' until
        # the transaction ends: the objects' locks (the tables', in a full rebuild) keep
        # every other writer off them, and VACUUM FULL waits for our lock on the table.
        clear=compile_statement(
            delete(segments).where(
                *of_batch(segments),
                literal_column(_CTID)
                == any_(func.array(select(in_place.c.row_address).scalar_subquery())),
            )
        ),
        fill=compile_statement(insert(segments).from_select(columns, rebuilt)),
    )


_CHANGE_PREFIX = "changed_"


def _change_columns(reserved: reservations.Reservations) -> list[tuple[str, Any]]:
    """The columns of ``changes_of`` rows, in their order."""
    return [
        ("at", _TIME),
        ("org_id", Text()),
        ("agent_id", Text()),
        *((f"{rate}_change", Numeric()) for rate in reserved.rates),
        *((f"{rate}_moment", Numeric()) for rate in reserved.rates),
    ]


def _changes(reserved: reservations.Reservations, in_place: Subquery, rebuilt: Select) -> Select:
    """The difference between the regions' segments (``in_place``) and those ``rebuilt`` in
    their place, as reservation changes (rows of ``changes_of``)."""
    removed = select(*(in_place.c[c.name] for c in reserved.segments.columns)).subquery("removed")
    made = rebuilt.subquery("made")
    return union_all(reserved.changes_of(removed, -1), reserved.changes_of(made, 1))


def _accounting(reserved: reservations.Reservations) -> Executable:
    """The statement adding the changes sent as arrays to every reservation rollup, one
    upsert each, every upsert reading the arrays itself."""
    changed = anchored(_change_columns(reserved), prefix=_CHANGE_PREFIX)
    upserts = reserved.maintained(changed)
    return select(literal(len(upserts))).add_cte(*upserts)


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
