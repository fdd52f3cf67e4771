"""The folder: LLM calls and platform events from their queues into the rollups.

Ingest stores each new event's raw row and, for the kinds the rollups count, a copy of its
counted columns in the raw table's queue (``{raw}_pending``, api.storage.schema); it never
touches a rollup. The folder takes one organization's queued rows of one queue off it and
counts them into every tier of every family that counts them, in one transaction, so any
snapshot sees each event either queued or in the rollups, never both and never neither. A
read adds the queued rows to the rollups (api.reads.sql.covered). Each statement names the
organization (the rows are counted in the process and sent back as arrays, not shared
between statements), so on Citus each runs on that organization's shard alone.

Folders in several processes (every server's, ``usage-api fold``) take an organization's
queue one at a time: a transaction-scoped advisory lock per queue and organization, tried,
not waited for, so each folder moves on to the organizations no other one holds. A folder
killed at any point leaves its transaction uncommitted: the rows stay queued, and the next
fold counts them once.
"""

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy import (
    BigInteger,
    Integer,
    Table,
    Text,
    bindparam,
    cast,
    delete,
    func,
    literal,
    select,
    union_all,
)
from sqlalchemy.sql import Select

from api.core.buckets import floor_to
from api.core.tiers import FINEST, TIERS
from api.storage import rollups
from api.storage.anchors import anchored, batch_orgs
from api.storage.db import Compiled, as_arrays, compile_statement, execute

_ORG = bindparam("org", type_=Text)
# The folder is background work: a lock it would wait for (a migration's, a rebuild's) makes
# it give up this pass and try again later, so it never holds one that such work waits for
# while it waits in turn (which PostgreSQL would end by cancelling one of them).
_YIELD = "SET LOCAL lock_timeout = '250ms'"
# Each tier sorts the fold's rows into key order: with the default 4 MB a fold of 20,000
# spread-out calls sorted on disk, every tier again.
_ROOM_TO_SORT = "SET LOCAL work_mem = '64MB'"


@dataclass(frozen=True, slots=True, eq=False)
class Queue:
    """The rows waiting for some rollup families: those of their raw tables' queues."""

    name: str
    lock_class: int  # the advisory lock's first key: one lock per queue and organization
    families: Sequence[rollups.Family]

    @property
    def tables(self) -> list[Table]:
        return [rollups.PENDING[raw] for raw, _ in self.families[0].sources]


QUEUES = (
    Queue("llm", 7201, rollups.LLM),
    Queue("platform", 7202, rollups.PLATFORM),
)
PENDING_TABLES = [table for queue in QUEUES for table in queue.tables]


def _take(table: Table) -> Compiled:
    """One organization's queued rows of ``table``, deleted and returned (all columns)."""
    return compile_statement(delete(table).where(table.c.org_id == _ORG).returning(*table.c))


def _tier_rows(table: Table) -> Select:
    """A tier's rows as the folder counted them (array parameters named after the table's
    columns), in key order, so that concurrent upserts lock rows in one order."""
    rows = anchored([(c.name, c.type) for c in table.columns], prefix=f"{table.name}_")
    return select(*(rows.c[c.name] for c in table.columns)).order_by(
        *(rows.c[c.name] for c in table.primary_key.columns)
    )


def _count(queue: Queue) -> Compiled:
    """Every tier of every family of ``queue`` gains the counted rows, in one statement
    (data-modifying CTEs, each reading its arrays itself: on Citus each runs on the
    organization's shard, as ingest's do)."""
    steps = [
        rollups.adding(table, _tier_rows(table), family.measures)
        for family in queue.families
        for table in family.tables.values()
    ]
    return compile_statement(select(literal(len(steps))).add_cte(*steps))


@dataclass(frozen=True, slots=True, eq=False)
class _Compiled:
    queue: Queue
    lock: Compiled
    takes: dict[Table, Compiled]
    count: Compiled
    orgs: Compiled  # the organizations with queued rows


def _orgs_queued(queue: Queue) -> Compiled:
    found = union_all(*(select(table.c.org_id).distinct() for table in queue.tables))
    return compile_statement(select(found.subquery().c.org_id).distinct())


def _try_lock(queue: Queue) -> Compiled:
    return compile_statement(
        select(
            func.pg_try_advisory_xact_lock(literal(queue.lock_class, Integer), func.hashtext(_ORG))
        )
    )


_STATEMENTS = {
    queue.name: _Compiled(
        queue=queue,
        lock=_try_lock(queue),
        takes={table: _take(table) for table in queue.tables},
        count=_count(queue),
        orgs=_orgs_queued(queue),
    )
    for queue in QUEUES
}


async def fold_org(conn: psycopg.AsyncConnection, queue: Queue, org: str) -> int | None:
    """``org``'s rows queued in ``queue`` into the rollups, in the caller's transaction:
    how many were folded, or None when another folder holds the organization's queue.
    The rows are taken off the queue, counted into each family's finest tier here, and the
    tiers upserted from those counts."""
    compiled = _STATEMENTS[queue.name]
    await conn.execute(_YIELD)
    locked = await (await execute(conn, compiled.lock, org=org)).fetchone()
    if not locked[0]:
        return None
    taken = {
        table: await (await execute(conn, take, org=org)).fetchall()
        for table, take in compiled.takes.items()
    }
    folded = sum(len(rows) for rows in taken.values())
    if folded:
        # Counting is the folder's Python: in a thread, so that a server's requests are
        # not held up behind a large fold.
        arrays = await asyncio.to_thread(_counted_arrays, queue, taken)
        await conn.execute(_ROOM_TO_SORT)
        await execute(conn, compiled.count, **arrays, **batch_orgs([org]))
    return folded


def _counted_arrays(queue: Queue, taken: Mapping[Table, Sequence[Any]]) -> dict[str, list[Any]]:
    """Every tier's rows of every family of ``queue``, as the arrays ``_count`` reads: the
    rows taken are counted once, into the finest tier of the family with every dimension;
    each other family sums those counts over the dimensions it keeps, and each tier sums
    the tier below it (the tiers nest: api.core.tiers). Sorted here, in the order the
    upserts take them: PostgreSQL's sort finds them in order (with the C collation), where
    it sorted and grouped a spread-out fold's every row again for each of 20 tiers (20,000
    calls over a day: about 200 ms a tier)."""
    widest = max(queue.families, key=lambda family: len(family.dimensions))
    finest = widest.finest_of_queued(taken)
    arrays: dict[str, list[Any]] = {}
    for family in queue.families:
        rows = finest if family is widest else _summed(finest, widest, family)
        for tier, table in family.tables.items():
            if TIERS[tier] != FINEST:
                rows = _coarser(rows, len(family.dimensions), TIERS[tier])
            names = [f"{table.name}_{column.name}" for column in table.columns]
            arrays |= as_arrays(sorted(rows), names)
    return arrays


def _summed(
    rows: list[tuple[Any, ...]], widest: rollups.Family, family: rollups.Family
) -> list[tuple[Any, ...]]:
    """``widest``'s finest-tier rows summed into ``family``'s (fewer dimensions)."""
    kept = [2 + widest.dimensions.index(name) for name in family.dimensions]
    return _sums(
        rows, lambda row: (row[0], row[1], *(row[index] for index in kept)), len(widest.dimensions)
    )


def _coarser(
    rows: list[tuple[Any, ...]], dimensions: int, width: timedelta
) -> list[tuple[Any, ...]]:
    """A tier's rows of ``width`` from a finer tier's: each finer bucket lies in one
    coarser bucket."""
    starts: dict[datetime, datetime] = {}

    def key(row: tuple[Any, ...]) -> tuple[Any, ...]:
        start = starts.get(row[1])
        if start is None:
            start = starts[row[1]] = floor_to(row[1], width)
        return (row[0], start, *row[2 : 2 + dimensions])

    return _sums(rows, key, dimensions)


def _sums(
    rows: list[tuple[Any, ...]], key: Callable[[tuple[Any, ...]], tuple[Any, ...]], dimensions: int
) -> list[tuple[Any, ...]]:
    """Tier rows (organization, bucket start, ``dimensions``, then the measures) summed by
    their ``key``: the rows of the key's tier and dimensions."""
    first_measure = 2 + dimensions
    sums: dict[tuple[Any, ...], list[int]] = {}
    for row in rows:
        found = key(row)
        figures = sums.get(found)
        if figures is None:
            sums[found] = list(row[first_measure:])
        else:
            for index, value in enumerate(row[first_measure:]):
                figures[index] += value
    return [(*found, *figures) for found, figures in sums.items()]


@dataclass(slots=True)
class Folded:
    rows: int = 0
    orgs: int = 0  # organizations folded (not those another folder held)


async def fold_all(conn: psycopg.AsyncConnection) -> Folded:
    """Every organization's queued rows of every queue, an organization at a time (each its
    own transaction), but those another folder holds."""
    done = Folded()
    for compiled in _STATEMENTS.values():
        cursor = await execute(conn, compiled.orgs)
        for (org,) in await cursor.fetchall():
            async with conn.transaction():
                rows = await fold_org(conn, compiled.queue, org)
            if rows is not None:
                done.rows += rows
                done.orgs += 1
    return done


_QUEUE_STATE = compile_statement(
    select(
        cast(
            sum(
                (select(func.count()).select_from(t).scalar_subquery() for t in PENDING_TABLES),
                literal(0),
            ),
            BigInteger,
        ).label("rows"),
        func.least(
            *(select(func.min(t.c.received_at)).scalar_subquery() for t in PENDING_TABLES)
        ).label("oldest"),
        func.now().label("now"),
    )
)


@dataclass(frozen=True, slots=True)
class QueueState:
    rows: int
    oldest_seconds: float  # the age of the oldest queued row (0 when none)


async def queue_state(conn: psycopg.AsyncConnection) -> QueueState:
    """How many rows wait in every queue, and for how long the oldest has."""
    async with conn.transaction():
        await conn.execute(_YIELD)
        row = await (await execute(conn, _QUEUE_STATE)).fetchone()
    rows, oldest, now = row
    age = 0.0 if oldest is None else max((now - oldest).total_seconds(), 0.0)
    return QueueState(rows=int(rows), oldest_seconds=age)
