"""Monthly partitions of the raw event tables (api.storage.schema.PARTITIONED), and the
retention of the raw events and their receipts.

Each table has one partition per calendar month (UTC) of event time, named
``{table}_y2026m11``, and a default partition that holds any event whose month has none
yet, so an insert never fails for want of a partition. ``usage-api maintain`` creates the
coming months ahead of their events (moving any rows the default partition holds for such
a month) and drops months wholly older than the raw retention, and deletes the receipts of
the events it dropped (the receipts are not partitioned: their key holds across months).
"""

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import psycopg
from psycopg import sql
from sqlalchemy import DateTime, bindparam, delete

from api.storage import exports
from api.storage.db import compile_statement, execute
from api.storage.export_queue import DATASET_OF_TABLE
from api.storage.schema import (
    event_receipts,
    llm_calls,
    message_events,
    thread_events,
    volume_events,
    workload_events,
)

TABLES = [
    table.name
    for table in (
        llm_calls,
        workload_events,
        volume_events,
        thread_events,
        message_events,
    )
]
MONTHS_AHEAD = 3
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MONTH_SUFFIX = re.compile(r"_y(\d{4})m(\d{2})\Z")
_PARTITION = re.compile(rf"({'|'.join(TABLES)})_(y\d{{4}}m\d{{2}}|default)\Z")


def is_partition(name: str | None) -> bool:
    """Whether a table is one of the partitions: made by migrations and maintain, not
    declared in the schema module (Alembic's comparisons leave them out)."""
    return bool(name and _PARTITION.match(name))


def include_name(name: str | None, kind: str, parents: object) -> bool:
    """Alembic's ``include_name`` hook: every object but the partitions and their indexes."""
    if kind == "table":
        return not is_partition(name)
    return True


def month_start(moment: datetime | date) -> date:
    return date(moment.year, moment.month, 1)


def next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def partition_name(table: str, month: date) -> str:
    return f"{table}_y{month.year:04d}m{month.month:02d}"


def _bound(month: date) -> datetime:
    return datetime(month.year, month.month, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Done:
    created: list[str]
    moved: int  # rows moved out of default partitions into new months
    dropped: list[str]
    # Partitions past the retention kept: events in them are not all exported yet.
    kept: list[str]
    deleted: int  # rows older than the retention deleted from default partitions
    receipts: int  # receipts of events older than the retention deleted


async def months_of(conn: psycopg.AsyncConnection, table: str) -> list[date]:
    """The months ``table`` has a partition for, oldest first."""
    cursor = await conn.execute(
        "SELECT child.relname FROM pg_inherits"
        " JOIN pg_class child ON child.oid = pg_inherits.inhrelid"
        " JOIN pg_class parent ON parent.oid = pg_inherits.inhparent"
        " WHERE parent.relname = %s",
        [table],
    )
    found = []
    for (name,) in await cursor.fetchall():
        match = _MONTH_SUFFIX.search(name)
        if match:
            found.append(date(int(match[1]), int(match[2]), 1))
    return sorted(found)


async def create_month(conn: psycopg.AsyncConnection, table: str, month: date) -> int:
    """The month's partition of ``table``, with the rows its default partition holds for it
    moved in (in one transaction). The number of rows moved."""
    name = partition_name(table, month)
    start, end = _bound(month), _bound(next_month(month))
    parent, default, child = (sql.Identifier(n) for n in (table, f"{table}_default", name))
    bounds = sql.SQL("FOR VALUES FROM ({}) TO ({})").format(sql.Literal(start), sql.Literal(end))
    async with conn.transaction():
        # Writers to the table wait here for the few moments this takes.
        await conn.execute(sql.SQL("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE").format(parent))
        cursor = await conn.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE time >= %s AND time < %s").format(default),
            [start, end],
        )
        (held,) = await cursor.fetchone()
        if not held:
            await conn.execute(
                sql.SQL("CREATE TABLE {} PARTITION OF {} {}").format(child, parent, bounds)
            )
            return 0
        await conn.execute(
            sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)").format(
                child, parent
            )
        )
        await conn.execute(
            sql.SQL(
                "WITH moved AS (DELETE FROM {} WHERE time >= %s AND time < %s RETURNING *)"
                " INSERT INTO {} SELECT * FROM moved"
            ).format(default, child),
            [start, end],
        )
        await conn.execute(
            sql.SQL("ALTER TABLE {} ATTACH PARTITION {} {}").format(parent, child, bounds)
        )
        return held


_DELETE_OLD_RECEIPTS = compile_statement(
    delete(event_receipts).where(
        event_receipts.c.time < bindparam("horizon", type_=DateTime(timezone=True))
    )
)


def raw_horizon(now: datetime, retention_days: int) -> datetime:
    """Where the raw events kept start: the first month not wholly older than the retention
    (older months are dropped whole)."""
    return _bound(month_start(now - timedelta(days=retention_days)))


async def maintain(conn: psycopg.AsyncConnection, now: datetime, retention_days: int) -> Done:
    """Every table's partitions for this month and the next MONTHS_AHEAD, created where
    missing; months wholly older than the retention dropped (kept, while a destination is
    registered, until their events are all exported: api.storage.exports), and the default
    partition's rows and the receipts as old deleted. Idempotent; safe beside ingest (a
    month's creation or drop waits for the writers of its table, and they for it, a
    moment)."""
    horizon = raw_horizon(now, retention_days)
    created, dropped, kept, moved, deleted = [], [], [], 0, 0
    for table in TABLES:
        have = await months_of(conn, table)
        month = month_start(now)
        for _ in range(MONTHS_AHEAD + 1):
            if month not in have:
                moved += await create_month(conn, table, month)
                created.append(partition_name(table, month))
            month = next_month(month)
        for month in have:
            start, end = _bound(month), _bound(next_month(month))
            if end > horizon:
                continue
            name = partition_name(table, month)
            if not await exports.all_exported(conn, DATASET_OF_TABLE[table], start, end):
                kept.append(name)
                continue
            await conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(name)))
            dropped.append(name)
        # Its rows past the retention go too (an import of old months lands there), once
        # they are all exported.
        if not await exports.all_exported(conn, DATASET_OF_TABLE[table], _EPOCH, horizon):
            kept.append(f"{table}_default")
            continue
        default = sql.Identifier(f"{table}_default")
        cursor = await conn.execute(
            sql.SQL("DELETE FROM {} WHERE time < %s").format(default), [horizon]
        )
        deleted += cursor.rowcount
    # The horizon is at or before now - retention, where import's acceptance starts: an event
    # whose receipt goes is one nothing accepts again, so it cannot be stored twice.
    cursor = await execute(conn, _DELETE_OLD_RECEIPTS, horizon=horizon)
    return Done(
        created=created,
        moved=moved,
        dropped=dropped,
        kept=kept,
        deleted=deleted,
        receipts=cursor.rowcount,
    )
