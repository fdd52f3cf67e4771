"""The folder: LLM calls and platform events from their queues into the rollups.

Ingest stores each new event's raw row and, for the kinds the rollups count, a copy of its
counted columns in the raw table's queue (``{raw}_pending``, api.storage.schema); it never
touches a rollup. The folder takes one organization's queued rows of one queue, counts them
into every tier of every family that counts them, and deletes them, in one statement, so any
snapshot sees each event either queued or in the rollups, never both and never neither. A
read adds the queued rows to the rollups (api.reads.sql.covered).

Folders in several processes (every server's, ``usage-api fold``) take an organization's
queue one at a time: a transaction-scoped advisory lock per queue and organization, tried,
not waited for, so each folder moves on to the organizations no other one holds. A folder
killed at any point leaves its transaction uncommitted: the rows stay queued, and the next
fold counts them once.
"""

import time
from collections.abc import Sequence
from dataclasses import dataclass

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

from api.core.tiers import FINEST, TIERS
from api.storage import rollups
from api.storage.db import Compiled, compile_statement, execute

_ORG = bindparam("org", type_=Text)


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


def _fold_statement(queue: Queue) -> Compiled:
    """One organization's queued rows deleted and counted into every tier of the queue's
    families, in one statement (data-modifying CTEs): the rows taken are exactly those the
    rollups gain. Each family's finest tier is counted from the rows taken, and each coarser
    tier sums those rows; every upsert writes in key order."""
    taken = {
        table: delete(table)
        .where(table.c.org_id == _ORG)
        .returning(*table.c)
        .cte(f"taken_{table.name}")
        for table in queue.tables
    }
    steps = []
    for family in queue.families:
        rows = [
            select(
                taken[table].c.time.label("at"),
                *(taken[table].c[name] for name in ("org_id", *family.dimensions)),
                *(
                    rollups.counted(counts[name], taken[table]).label(name)
                    for name in family.measures
                ),
            )
            for table, counts in ((rollups.PENDING[raw], counts) for raw, counts in family.sources)
        ]
        finest = family.binned(union_all(*rows).subquery(), FINEST).cte(
            f"counted_{family.tables['5m'].name}"
        )
        at = finest.c.bucket_start.label("at")
        for tier, table in family.tables.items():
            summed = select(at, *(finest.c[name] for name in family.columns)).subquery()
            steps.append(rollups.adding(table, family.binned(summed, TIERS[tier]), family.measures))
    count = select(
        sum(
            (select(func.count()).select_from(t).scalar_subquery() for t in taken.values()),
            literal(0),
        )
    )
    return compile_statement(count.add_cte(*steps))


@dataclass(frozen=True, slots=True, eq=False)
class _Compiled:
    queue: Queue
    fold: Compiled
    orgs: Compiled  # the organizations with queued rows
    lock: Compiled


def _orgs_queued(queue: Queue) -> Compiled:
    found = union_all(*(select(table.c.org_id).distinct() for table in queue.tables))
    return compile_statement(select(found.subquery().c.org_id).distinct())


def _try_lock(queue: Queue) -> Compiled:
    return compile_statement(
        select(
            func.pg_try_advisory_xact_lock(literal(queue.lock_class, Integer), func.hashtext(_ORG))
        )
    )


_STATEMENTS = [
    _Compiled(queue, _fold_statement(queue), _orgs_queued(queue), _try_lock(queue))
    for queue in QUEUES
]


async def fold_org(conn: psycopg.AsyncConnection, queue: Queue, org: str) -> int | None:
    """``org``'s rows queued in ``queue`` into the rollups, in the caller's transaction:
    how many were folded, or None when another folder holds the organization's queue."""
    compiled = next(c for c in _STATEMENTS if c.queue is queue)
    locked = await (await execute(conn, compiled.lock, org=org)).fetchone()
    if not locked[0]:
        return None
    row = await (await execute(conn, compiled.fold, org=org)).fetchone()
    return int(row[0])


@dataclass(slots=True)
class Folded:
    rows: int = 0
    orgs: int = 0
    skipped: int = 0  # organizations another folder held
    seconds: float = 0.0


async def fold_all(conn: psycopg.AsyncConnection) -> Folded:
    """Every organization's queued rows of every queue, an organization at a time (each its
    own transaction), but those another folder holds."""
    started = time.monotonic()
    done = Folded()
    for compiled in _STATEMENTS:
        cursor = await execute(conn, compiled.orgs)
        for (org,) in await cursor.fetchall():
            async with conn.transaction():
                rows = await fold_org(conn, compiled.queue, org)
            if rows is None:
                done.skipped += 1
                continue
            done.rows += rows
            done.orgs += 1
    done.seconds = time.monotonic() - started
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
    row = await (await execute(conn, _QUEUE_STATE)).fetchone()
    rows, oldest, now = row
    age = 0.0 if oldest is None else max((now - oldest).total_seconds(), 0.0)
    return QueueState(rows=int(rows), oldest_seconds=age)
