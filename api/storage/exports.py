"""The exporter's bookkeeping in the database (api.export): its destination and backfill,
its jobs over the queue (api.storage.export_queue), the files and manifests it has written,
and the organizations' dates whose hourly figures changed since.

A job is the queue rows one pass takes: tagged with the job's id in one transaction, written
to files, and deleted in the transaction that records the files as listed, once every
manifest lists them. A job left tagged by a crash is written again from the same rows, to
the same names: no event is in two files, none in none.
"""

import asyncio
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import uuid4

import psycopg
from sqlalchemy import (
    BigInteger,
    Date,
    DateTime,
    Text,
    Uuid,
    all_,
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    or_,
    select,
    true,
    tuple_,
    union,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, insert

from api.storage.db import compile_statement, execute, unnest_rows
from api.storage.schema import (
    ALL_ORGS,
    RAW_TABLES,
    export_dirty,
    export_files,
    export_partitions,
    export_pending,
    export_state,
    llm_calls_pending,
    llm_totals,
    message_events_pending,
    orgs,
    platform_totals,
    thread_events_pending,
    volume_segments,
    workload_segments,
)

_log = logging.getLogger("api.export")
_ORG = bindparam("org", type_=Text)
_JOB = bindparam("job", type_=BigInteger)
_DATASET = bindparam("dataset", type_=Text)
_DATE = bindparam("date", type_=Date)
_DATES = bindparam("dates", type_=ARRAY(Date))
DAY = timedelta(days=1)
# Given, not now(): on Citus an upsert's SET may call no function that is not immutable.
_NOW = bindparam("now", type_=DateTime(timezone=True))


@dataclass(frozen=True, slots=True)
class State:
    url: str
    first_date: date  # the first date the destination holds
    backfill_next: date | None  # the next date a backfill writes (None: none under way)
    registered_at: datetime  # by the database's clock


_STATE = compile_statement(
    select(
        export_state.c.url,
        export_state.c.backfill_from,
        export_state.c.backfill_next,
        export_state.c.registered_at,
    ).where(export_state.c.org_id == ALL_ORGS)
)
_CLOCK = "SELECT clock_timestamp()"
_REGISTER = compile_statement(
    insert(export_state)
    .values(
        org_id=ALL_ORGS,
        url=bindparam("url", type_=Text),
        registered_at=_NOW,
        backfill_from=bindparam("first_date", type_=Date),
        backfill_next=bindparam("first_date", type_=Date),
    )
    .on_conflict_do_update(
        index_elements=["org_id"],
        set_={
            "url": bindparam("url", type_=Text),
            "registered_at": _NOW,
            "backfill_from": bindparam("first_date", type_=Date),
            "backfill_next": bindparam("first_date", type_=Date),
        },
    )
)
_FORGET_FILES = compile_statement(delete(export_files))
_FORGET_PARTITIONS = compile_statement(delete(export_partitions))
# The earliest day anything is stored for: raw events, or (kept longer) rollups and segments.
_EARLIEST = compile_statement(
    select(
        func.least(
            *(select(func.min(table.c.time)).scalar_subquery() for table in RAW_TABLES),
            *(
                select(func.min(table.c.bucket_start)).scalar_subquery()
                for table in (llm_totals["1d"], platform_totals["1d"])
            ),
            *(
                select(func.min(table.c.start_time)).scalar_subquery()
                for table in (workload_segments, volume_segments)
            ),
        )
    )
)
# Client sessions whose transaction began before a moment and is still open.
_OLDER_TRANSACTIONS = (
    "SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend'"
    " AND pid <> pg_backend_pid() AND state <> 'idle' AND xact_start < %s"
)


async def state(conn: psycopg.AsyncConnection) -> State | None:
    row = await (await execute(conn, _STATE)).fetchone()
    return None if row is None else State(*row)


async def register(conn: psycopg.AsyncConnection, url: str, today: date) -> State:
    """The destination ``url`` as this database's: registered, with a backfill from the
    earliest day stored, if it was not (a destination registered before in its stead is
    forgotten: the new one is written whole)."""
    found = await state(conn)
    if found is not None and found.url == url:
        return found
    async with conn.transaction():
        earliest = await (await execute(conn, _EARLIEST)).fetchone()
        first_date = earliest[0].astimezone(UTC).date() if earliest[0] else today
        (now,) = await (await conn.execute(_CLOCK)).fetchone()
        await execute(conn, _REGISTER, url=url, first_date=first_date, now=now)
        await execute(conn, _FORGET_FILES)
        await execute(conn, _FORGET_PARTITIONS)
    _log.info("exporting to %s from %s: a backfill of every day begins", url, first_date)
    return State(url, first_date, first_date, now)


_WAIT_REPORT_SECONDS = 10.0


async def settle(conn: psycopg.AsyncConnection, registered: State) -> None:
    """Waits for every transaction begun before the registration (by the database's clock)
    before a backfill reads what is stored: one may have stored events without queueing
    them for export (api.storage.export_queue), and they must be stored by then. Waited for
    before every backfill, so a pass that died waiting waits again."""
    reported_at = 0.0
    while True:
        cursor = await conn.execute(_OLDER_TRANSACTIONS, [registered.registered_at])
        pids = [pid for (pid,) in await cursor.fetchall()]
        if not pids:
            return
        if time.monotonic() - reported_at > _WAIT_REPORT_SECONDS:
            reported_at = time.monotonic()
            _log.warning(
                "the export's backfill waits for transactions begun before its registration"
                " (pids %s)",
                ", ".join(map(str, pids)),
            )
        await asyncio.sleep(0.05)


_NEXT = bindparam("next", type_=Date)
# Moved on only from the date the pass wrote: a backfill asked for meanwhile (`--since`, a
# rebuild) moved it back, and stays.
_BACKFILL_DONE = compile_statement(
    update(export_state)
    .where(
        export_state.c.org_id == ALL_ORGS,
        export_state.c.backfill_next.is_not_distinct_from(bindparam("done", type_=Date)),
    )
    .values(backfill_next=_NEXT)
)
_BACKFILL_FROM = compile_statement(
    update(export_state)
    .where(export_state.c.org_id == ALL_ORGS)
    .values(
        backfill_next=case(
            (
                or_(export_state.c.backfill_next.is_(None), export_state.c.backfill_next > _NEXT),
                _NEXT,
            ),
            else_=export_state.c.backfill_next,
        )
    )
)


async def backfill_done(conn: psycopg.AsyncConnection, done: date, next_date: date | None) -> bool:
    """``done`` written: the backfill goes on at ``next_date`` (None: it is over), unless
    one asked for meanwhile starts earlier. Whether it went on as said."""
    cursor = await execute(conn, _BACKFILL_DONE, done=done, next=next_date)
    return cursor.rowcount == 1


async def backfill_from(conn: psycopg.AsyncConnection, since: date) -> None:
    """A backfill from ``since`` on (`usage-api export --since`), or from the earlier date
    of one under way; never before the destination's first date."""
    found = await state(conn)
    if found is not None:
        await execute(conn, _BACKFILL_FROM, next=max(since, found.first_date))


async def rebuilt(conn: psycopg.AsyncConnection, org: str | None, since: date, today: date) -> None:
    """The figures of ``org`` (None: every organization) from ``since`` on were rebuilt
    (`usage-api rebuild`): the hourly figures exported for those dates are written again;
    for every organization, by a backfill from ``since``."""
    found = await state(conn)
    if found is None:
        return
    since = max(since, found.first_date)
    if org is None:
        await backfill_from(conn, since)
        return
    days = (today - since).days
    await mark_dirty(conn, org, (since + n * DAY for n in range(max(days, 0))))


# --- the queue's jobs


_QUEUED_ORGS = compile_statement(
    select(
        export_pending.c.org_id,
        func.sum(func.cardinality(export_pending.c.event_ids)).label("events"),
    )
    .where(export_pending.c.job_id.is_(None))
    .group_by(export_pending.c.org_id)
    .order_by(export_pending.c.org_id)
)
_TAG = compile_statement(
    update(export_pending)
    .where(export_pending.c.org_id == _ORG, export_pending.c.job_id.is_(None))
    .values(job_id=_JOB)
    .returning(export_pending.c.dataset, export_pending.c.times)
)
_UNFINISHED_JOB = compile_statement(
    select(func.min(export_pending.c.job_id)).where(export_pending.c.job_id.is_not(None))
)
_JOB_ORGS = compile_statement(
    select(export_pending.c.org_id).distinct().where(export_pending.c.job_id == _JOB)
)
_NEXT_JOB = compile_statement(
    update(export_state)
    .where(export_state.c.org_id == ALL_ORGS)
    .values(next_job=export_state.c.next_job + 1)
    .returning(export_state.c.next_job - 1)
)
_DONE = compile_statement(
    delete(export_pending).where(export_pending.c.org_id == _ORG, export_pending.c.job_id == _JOB)
)
_OLDEST_QUEUED = compile_statement(select(func.min(export_pending.c.queued_at)))
_QUEUED_EVENTS = compile_statement(
    select(func.coalesce(func.sum(func.cardinality(export_pending.c.event_ids)), 0))
)


async def queued_events(conn: psycopg.AsyncConnection) -> int:
    return int((await (await execute(conn, _QUEUED_EVENTS)).fetchone())[0])


async def next_job(conn: psycopg.AsyncConnection) -> int:
    return (await (await execute(conn, _NEXT_JOB)).fetchone())[0]


async def unfinished_job(conn: psycopg.AsyncConnection) -> int | None:
    """A job a crashed pass left tagged, if any."""
    return (await (await execute(conn, _UNFINISHED_JOB)).fetchone())[0]


# The datasets whose events change the figures of other dates than their own: an
# allocation's event changes every hour from its time to the object's next event.
_ALLOCATION_DATASETS = {"workload_events", "volume_events"}


def changed_dates(dataset: str, times: Iterable[datetime], today: date) -> set[date]:
    """The UTC dates whose hourly figures events at ``times`` change: their own, and for
    allocations every date after theirs up to ``today`` too (which later events would bound:
    kept simple, as late allocation events are rare). A date not yet written is marked all
    the same: another exporter's clock may be ahead."""
    dates = {time.astimezone(UTC).date() for time in times}
    if dataset in _ALLOCATION_DATASETS and dates:
        day, dates = min(dates), set()
        while day <= today:
            dates.add(day)
            day += DAY
    return dates


async def take(conn: psycopg.AsyncConnection, at_most: int, today: date) -> int | None:
    """A new job: the queue of organizations in turn until it holds ``at_most`` events (at
    least one organization's whole queue), tagged, and the dates whose hourly figures they
    change marked, in one transaction. The job's id; None when the queue is empty."""
    async with conn.transaction():
        queued = await (await execute(conn, _QUEUED_ORGS)).fetchall()
        if not queued:
            return None
        job = await next_job(conn)
        events = 0
        for org, count in queued:
            if events and events + count > at_most:
                break
            dates: set[date] = set()
            for dataset, times in await (await execute(conn, _TAG, org=org, job=job)).fetchall():
                dates |= changed_dates(dataset, times, today)
            await mark_dirty(conn, org, dates)
            events += count
    return job


async def finish(conn: psycopg.AsyncConnection, job: int) -> None:
    """The job's queue rows deleted: its events are in listed files. Per organization, so
    each statement runs on one shard on Citus."""
    orgs = [org for (org,) in await (await execute(conn, _JOB_ORGS, job=job)).fetchall()]
    for org in orgs:
        await execute(conn, _DONE, org=org, job=job)


_QUEUED_TIMES = (
    func.unnest(export_pending.c.times).table_valued("time").render_derived().lateral("t")
)
_QUEUED_BETWEEN = compile_statement(
    select(
        exists(
            select(_QUEUED_TIMES.c.time)
            .select_from(export_pending.join(_QUEUED_TIMES, true()))
            .where(
                export_pending.c.dataset == _DATASET,
                _QUEUED_TIMES.c.time >= bindparam("lo", type_=DateTime(timezone=True)),
                _QUEUED_TIMES.c.time < bindparam("hi", type_=DateTime(timezone=True)),
            )
        )
    )
)


async def all_exported(
    conn: psycopg.AsyncConnection, dataset: str, start: datetime, end: datetime
) -> bool:
    """Whether every stored event of ``dataset`` with a time in [start, end) is exported:
    none is queued, and no backfill still has to write their dates (true when no
    destination is registered: there is nothing to wait for)."""
    found = await state(conn)
    if found is None:
        return True
    if found.backfill_next is not None and found.backfill_next < end.date():
        return False
    cursor = await execute(conn, _QUEUED_BETWEEN, dataset=dataset, lo=start, hi=end)
    return not (await cursor.fetchone())[0]


async def oldest_queued(conn: psycopg.AsyncConnection) -> datetime | None:
    """When the longest-waiting queue row was stored (the export lag's start)."""
    return (await (await execute(conn, _OLDEST_QUEUED)).fetchone())[0]


# --- files and partitions


@dataclass(frozen=True, slots=True)
class FileRecord:
    name: str
    rows: int
    bytes: int
    sha256: str
    orgs: tuple[str, ...] = ()


_PARTITION = and_(
    export_files.c.org_id == ALL_ORGS,
    export_files.c.dataset == _DATASET,
    export_files.c.date == _DATE,
)
_FILE_COLUMNS = (
    export_files.c.name,
    export_files.c.rows,
    export_files.c.bytes,
    export_files.c.sha256,
    export_files.c.orgs,
)
_LISTED = compile_statement(
    select(*_FILE_COLUMNS)
    .where(_PARTITION, export_files.c.state == "listed")
    .order_by(export_files.c.name)
)
_ANY_STATE = compile_statement(
    select(*_FILE_COLUMNS).where(_PARTITION).order_by(export_files.c.name)
)
_DAY_START = bindparam("day_start", type_=DateTime(timezone=True))
_DAY_END = bindparam("day_end", type_=DateTime(timezone=True))


def _counted_on_the_day() -> list[Any]:
    """The organizations with LLM calls or platform events on the day: in the daily rollups,
    or still queued for them."""
    found: list[Any] = [
        select(table.c.org_id).where(table.c.bucket_start == _DAY_START)
        for table in (llm_totals["1d"], platform_totals["1d"])
    ]
    return found + [
        select(table.c.org_id).where(table.c.time >= _DAY_START, table.c.time < _DAY_END)
        for table in (llm_calls_pending, thread_events_pending, message_events_pending)
    ]


def _held_on_the_day() -> list[Any]:
    """The organizations with a reservation held some time of the day."""
    return [
        select(table.c.org_id).where(
            table.c.start_time < _DAY_END,
            or_(table.c.end_time.is_(None), table.c.end_time > _DAY_START),
        )
        for table in (workload_segments, volume_segments)
    ]


_ORGS_WITH_USAGE = compile_statement(
    union(*_counted_on_the_day(), *_held_on_the_day()).order_by("org_id")
)
_GENERATION = compile_statement(
    select(export_partitions.c.generation).where(
        export_partitions.c.org_id == ALL_ORGS,
        export_partitions.c.dataset == _DATASET,
        export_partitions.c.date == _DATE,
    )
)
# A file's row as every statement that writes one names it.
_FILE = {
    "org_id": ALL_ORGS,
    "dataset": _DATASET,
    "date": _DATE,
    "name": bindparam("name", type_=Text),
    "job_id": _JOB,
}
_RECORD_FILE = insert(export_files).values(
    **_FILE,
    state=bindparam("state", type_=Text),
    rows=bindparam("rows", type_=BigInteger),
    bytes=bindparam("bytes", type_=BigInteger),
    sha256=bindparam("sha256", type_=Text),
    orgs=bindparam("orgs", type_=ARRAY(Text)),
)
_RECORD_FILE = compile_statement(
    _RECORD_FILE.on_conflict_do_update(
        index_elements=["org_id", "dataset", "date", "name"],
        set_={
            name: _RECORD_FILE.excluded[name]
            for name in ("job_id", "state", "rows", "bytes", "sha256", "orgs")
        },
    )
)
_SUPERSEDE = compile_statement(
    update(export_files)
    .where(
        _PARTITION,
        export_files.c.state == "listed",
        export_files.c.name != all_(bindparam("kept", type_=ARRAY(Text))),
    )
    .values(state="superseded")
)
_SUPERSEDED = compile_statement(
    select(export_files.c.dataset, export_files.c.date, export_files.c.name).where(
        export_files.c.org_id == ALL_ORGS, export_files.c.state == "superseded"
    )
)
_FORGET_FILE = compile_statement(
    delete(export_files).where(_PARTITION, export_files.c.name == bindparam("name", type_=Text))
)
_WRITTEN_PARTITION = compile_statement(
    insert(export_partitions)
    .values(
        org_id=ALL_ORGS,
        dataset=_DATASET,
        date=_DATE,
        generation=bindparam("generation", type_=BigInteger),
        written_at=_NOW,
    )
    .on_conflict_do_update(
        index_elements=["org_id", "dataset", "date"],
        set_={"generation": bindparam("generation"), "written_at": _NOW},
    )
)
_PARTITION_DATES = compile_statement(
    select(export_partitions.c.date).where(
        export_partitions.c.org_id == ALL_ORGS, export_partitions.c.dataset == _DATASET
    )
)


@dataclass(frozen=True, slots=True)
class Partition:
    generation: int  # of the manifest last written (0: none yet)
    files: tuple[FileRecord, ...]  # listed in it


def _records(rows: Iterable[Sequence[Any]]) -> tuple[FileRecord, ...]:
    return tuple(
        FileRecord(name, n or 0, size or 0, sha or "", tuple(orgs or ()))
        for name, n, size, sha, orgs in rows
    )


async def partition(conn: psycopg.AsyncConnection, dataset: str, day: date) -> Partition:
    found = await (await execute(conn, _GENERATION, dataset=dataset, date=day)).fetchone()
    rows = await (await execute(conn, _LISTED, dataset=dataset, date=day)).fetchall()
    return Partition(generation=found[0] if found else 0, files=_records(rows))


async def every_file(
    conn: psycopg.AsyncConnection, dataset: str, day: date
) -> tuple[FileRecord, ...]:
    """The partition's files, listed or not yet."""
    rows = await (await execute(conn, _ANY_STATE, dataset=dataset, date=day)).fetchall()
    return _records(rows)


async def orgs_with_usage(conn: psycopg.AsyncConnection, day: date) -> list[str]:
    """The organizations with any usage on the UTC ``day``: the ones its hourly figures
    have rows for (every other has none to compute)."""
    start = datetime.combine(day, datetime.min.time(), UTC)
    cursor = await execute(conn, _ORGS_WITH_USAGE, day_start=start, day_end=start + DAY)
    return [org for (org,) in await cursor.fetchall()]


_PLACE = insert(export_files).values(
    **_FILE, state="writing", orgs=bindparam("orgs", type_=ARRAY(Text))
)
_PLACE = compile_statement(
    _PLACE.on_conflict_do_update(
        index_elements=["org_id", "dataset", "date", "name"], set_={"orgs": _PLACE.excluded.orgs}
    )
)


async def place(
    conn: psycopg.AsyncConnection, dataset: str, day: date, job: int, name: str, orgs: list[str]
) -> None:
    """The organizations a part holds, recorded before it is uploaded (a new part is
    ``writing`` until listed)."""
    await execute(conn, _PLACE, dataset=dataset, date=day, job=job, name=name, orgs=orgs)


async def record_files(
    conn: psycopg.AsyncConnection,
    dataset: str,
    day: date,
    job: int,
    files: Iterable[FileRecord],
    state_: str,
) -> None:
    for file in files:
        await execute(
            conn,
            _RECORD_FILE,
            dataset=dataset,
            date=day,
            name=file.name,
            job=job,
            state=state_,
            rows=file.rows,
            bytes=file.bytes,
            sha256=file.sha256,
            orgs=list(file.orgs) or None,
        )


async def partition_written(
    conn: psycopg.AsyncConnection,
    dataset: str,
    day: date,
    generation: int,
    listed: Sequence[FileRecord],
    job: int,
    *,
    replacing: bool = False,
) -> None:
    """The partition's manifest ``generation`` is written and lists ``listed``: those files
    are recorded as listed; ``replacing``: every other file of it is superseded (its
    object to be deleted)."""
    await record_files(conn, dataset, day, job, listed, "listed")
    if replacing:
        kept = [file.name for file in listed]
        await execute(conn, _SUPERSEDE, dataset=dataset, date=day, kept=kept)
    await execute(
        conn,
        _WRITTEN_PARTITION,
        dataset=dataset,
        date=day,
        generation=generation,
        now=datetime.now(UTC),
    )


async def superseded(conn: psycopg.AsyncConnection) -> list[tuple[str, date, str]]:
    return [tuple(row) for row in await (await execute(conn, _SUPERSEDED)).fetchall()]


async def forget_file(conn: psycopg.AsyncConnection, dataset: str, day: date, name: str) -> None:
    await execute(conn, _FORGET_FILE, dataset=dataset, date=day, name=name)


async def written_dates(conn: psycopg.AsyncConnection, dataset: str) -> set[date]:
    rows = await (await execute(conn, _PARTITION_DATES, dataset=dataset)).fetchall()
    return {day for (day,) in rows}


# --- the organizations' dates to write again


# Read from the organization's row: on Citus the statement then runs on its shard, where
# from parameters alone its rows would be made on the coordinator and sent on.
_MARK_DIRTY = insert(export_dirty).from_select(
    ["org_id", "date", "marked_id"],
    select(orgs.c.org_id, func.unnest(_DATES), bindparam("marked_id", type_=Uuid)).where(
        orgs.c.org_id == _ORG
    ),
)
# The new mark from the row proposed (a parameter in SET is untyped on Citus' workers).
_MARK_DIRTY = compile_statement(
    _MARK_DIRTY.on_conflict_do_update(
        index_elements=["org_id", "date"], set_={"marked_id": _MARK_DIRTY.excluded.marked_id}
    )
)
_DIRTY = compile_statement(
    select(export_dirty.c.org_id, export_dirty.c.date, export_dirty.c.marked_id)
    .where(export_dirty.c.date <= _DATE)
    .order_by(export_dirty.c.date, export_dirty.c.org_id)
)
_READ_MARKS = unnest_rows([("date", Date()), ("marked_id", Uuid())], prefix="read_")
_CLEAN = compile_statement(
    delete(export_dirty).where(
        export_dirty.c.org_id == _ORG,
        tuple_(export_dirty.c.date, export_dirty.c.marked_id).in_(
            select(_READ_MARKS.c.date, _READ_MARKS.c.marked_id)
        ),
    )
)


async def mark_dirty(conn: psycopg.AsyncConnection, org: str, dates: Iterable[date]) -> None:
    """The organization's ``dates`` to be written again (their hourly figures changed)."""
    dates = sorted(set(dates))
    if dates:
        await execute(conn, _MARK_DIRTY, org=org, dates=dates, marked_id=uuid4())


async def dirty(conn: psycopg.AsyncConnection, until: date) -> list[tuple[str, date, Any]]:
    """(org, date, mark) of every date up to ``until`` to write again."""
    return [tuple(row) for row in await (await execute(conn, _DIRTY, date=until)).fetchall()]


async def clean(conn: psycopg.AsyncConnection, org: str, marks: Sequence[tuple[date, Any]]) -> None:
    """The marks read deleted; one made since (another mark id) stays."""
    await execute(
        conn,
        _CLEAN,
        org=org,
        read_date=[day for day, _ in marks],
        read_marked_id=[mark for _, mark in marks],
    )
