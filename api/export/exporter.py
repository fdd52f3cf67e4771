"""The exporter as it runs: in every server process while ``USAGE_EXPORT_URL`` is set (unless
USAGE_EXPORT_IN_SERVER=0) and as ``usage-api export``, a pass every ``interval`` seconds,
one at a time across processes (a session advisory lock, api.storage.session_locks).

A pass: registers the destination (a new one gets a backfill of every day stored); settles
what a crash left (a job tagged and not listed is written again, a backfill's unlisted
files deleted); writes the queue's events in jobs; backfills the dates asked for, a date at
a time (events and hourly figures); writes the hourly figures of the dates ended and of
those that changed; then the queue's events again, so that none waits longer than the
interval and one pass. A pass that fails (the destination refuses or
is unreachable, the database is down) is logged and tried again after a backoff that
doubles up to the interval: nothing is skipped, since what is left to do is in the database.
"""

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

import adbc_driver_postgresql.dbapi as adbc
import psycopg
from prometheus_client import Counter, Gauge

from api.core.destinations import Destination
from api.export import events, hourly
from api.export.events import ExportError
from api.export.parquet import reader_connection
from api.export.store import Store, StoreError
from api.settings import Settings
from api.storage import exports
from api.storage.availability import Database, DatabaseUnavailable
from api.storage.db import connect_kwargs
from api.storage.session_locks import holding, session_lock

_log = logging.getLogger("api.export")
EXPORTING = session_lock(7204, 0)
DAY = timedelta(days=1)
_FIRST_BACKOFF = 1.0

ROWS = Counter("usage_export_rows_total", "Rows this process exported, by dataset", ["dataset"])
FILES = Counter("usage_export_files_total", "Files this process wrote, by dataset", ["dataset"])
FAILURES = Counter("usage_export_failures_total", "Export passes of this process that failed")
LAG = Gauge(
    "usage_export_lag_seconds",
    "How long the oldest event stored and not yet exported has waited (0: none waits)",
)
BACKFILL_DAYS = Gauge("usage_export_backfill_days", "Days a backfill under way has left")
LAST_SUCCESS = Gauge(
    "usage_export_last_success_timestamp_seconds", "When this process's last pass succeeded"
)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class Passed:
    """What one pass exported."""

    events: int = 0
    event_files: int = 0
    backfilled_dates: list[date] = field(default_factory=list)
    hourly_dates: int = 0
    hourly_files: int = 0


async def export_once(
    conn: psycopg.AsyncConnection,
    database_url: str,
    store: Store,
    *,
    delay: timedelta,
    clock: Callable[[], datetime] = utc_now,
    progress: "Reporter | None" = None,
) -> Passed | None:
    """One pass (the module's docstring); None when another process is exporting."""
    async with holding(conn, EXPORTING) as sole:
        if not sole:
            return None
        return await _pass(conn, database_url, store, delay, clock, progress or _Silent())


async def _pass(
    conn: psycopg.AsyncConnection,
    database_url: str,
    store: Store,
    delay: timedelta,
    clock: Callable[[], datetime],
    progress: "Reporter",
) -> Passed:
    now = clock()
    today = now.date()
    state = await exports.register(conn, store.destination.url, today)
    passed = Passed()
    # Measured before the work too: a pass that fails still shows how long events wait.
    await _measure_lag(conn, clock)
    await events.recover_backfill(conn, store)
    await _write_queue(conn, database_url, store, today, passed, progress)
    last_hourly = hourly.last_exportable(now, delay)
    state = await exports.state(conn)
    # Through tomorrow: an event may be stored minutes ahead of the clock (MAX_CLOCK_SKEW).
    until = today + DAY
    day = state.backfill_next
    if day is not None:
        await exports.settle(conn, state)
        progress.total = (until - day).days + 1
    async with (
        await psycopg.AsyncConnection.connect(database_url, **connect_kwargs()) as figures,
        _closing_reader(database_url) as reader,
    ):
        while day is not None and day <= until:
            BACKFILL_DAYS.set((until - day).days + 1)
            progress.update(max(progress.total - (until - day).days - 1, 0), f"backfilling {day}")
            # The date's events and hourly figures at once, each on connections of its own:
            # PostgreSQL reads the figures while the events' rows become files here.
            written = hourly.Written()
            work = [events.backfill_date(conn, database_url, store, day)]
            if day <= last_hourly:
                work.append(hourly.write_date(figures, reader, store, day, None, [], written))
            exported, *_ = await _together(*work)
            _count_events(passed, exported)
            _count_hourly(passed, written)
            passed.backfilled_dates.append(day)
            following = day + DAY if day < until else None
            if await exports.backfill_done(conn, day, following):
                day = following
            else:  # a backfill asked for meanwhile starts earlier
                day = (await exports.state(conn)).backfill_next
        BACKFILL_DAYS.set(0)
        written = await hourly.export_hourly(figures, reader, store, state.first_date, last_hourly)
    _count_hourly(passed, written)
    # The queue again: what arrived during the pass waits for the next interval, not for
    # the rest of this pass and then the interval.
    await _write_queue(conn, database_url, store, today, passed, progress)
    await _measure_lag(conn, clock)
    return passed


async def _write_queue(
    conn: psycopg.AsyncConnection,
    database_url: str,
    store: Store,
    today: date,
    passed: Passed,
    progress: "Reporter",
) -> None:
    """The queue's events written in jobs, as many as it held when this began: under steady
    ingest it is never empty, and the rest of the pass must come too."""
    backlog = await exports.queued_events(conn)
    written = 0
    job = await exports.unfinished_job(conn) or await exports.take(conn, events.JOB_EVENTS, today)
    while job is not None:
        exported = await events.write_job(conn, database_url, store, job)
        _count_events(passed, exported)
        written += exported.events
        if progress.total is None:  # the bar counts events only where no backfill runs
            progress.update(passed.events, "events")
        if written >= backlog:
            break
        job = await exports.take(conn, events.JOB_EVENTS, today)


@asynccontextmanager
async def _closing_reader(database_url: str) -> AsyncIterator[adbc.Connection]:
    reader = await asyncio.to_thread(reader_connection, database_url)
    try:
        yield reader
    finally:
        await asyncio.to_thread(reader.close)


async def _together(*work: Coroutine[Any, Any, Any]) -> list[Any]:
    """What each of ``work`` returned, run at once; the first to fail raised as it is (the
    pass's failures are told apart by type), the others then cancelled."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(each) for each in work]
    except ExceptionGroup as failed:
        raise failed.exceptions[0] from None
    return [task.result() for task in tasks]


class Reporter(Protocol):
    """Where a pass reports its progress (api.progress.Progress): the days a backfill has
    (``total``), or the events exported when there is no backfill."""

    total: int | None

    def update(self, done: int, note: str = "") -> None: ...


class _Silent:
    total: int | None = None

    def update(self, done: int, note: str = "") -> None:
        pass


def _count_events(passed: Passed, exported: events.Exported) -> None:
    passed.events += exported.events
    passed.event_files += exported.files
    for dataset, rows in exported.rows_by_dataset.items():
        ROWS.labels(dataset=dataset).inc(rows)
    for dataset, files in exported.files_by_dataset.items():
        FILES.labels(dataset=dataset).inc(files)


def _count_hourly(passed: Passed, written: hourly.Written) -> None:
    passed.hourly_dates += written.dates
    passed.hourly_files += written.files
    ROWS.labels(dataset=hourly.DATASET).inc(written.rows)
    FILES.labels(dataset=hourly.DATASET).inc(written.files)


async def _measure_lag(conn: psycopg.AsyncConnection, clock: Callable[[], datetime]) -> None:
    oldest = await exports.oldest_queued(conn)
    LAG.set(0 if oldest is None else max((clock() - oldest).total_seconds(), 0))


@dataclass(slots=True)
class ExporterStatus:
    destination: str
    exporting: bool  # this process runs the exporter (else `usage-api export` runs apart)
    last_pass_at: float | None = None  # time.time() of the last pass that succeeded
    error: str | None = None  # why the last pass failed, if it did
    failures: int = 0  # passes failed in a row


class Exporter:
    def __init__(
        self,
        database: Database,
        database_url: str,
        destination: Destination,
        *,
        exporting: bool,
        interval: float,
        delay: float,
    ) -> None:
        self._database = database
        self._database_url = database_url
        self._store = Store(destination)
        self._interval = interval
        self._delay = timedelta(seconds=delay)
        self.status = ExporterStatus(destination=destination.url, exporting=exporting)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.status.exporting:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def once(self, progress: Reporter | None = None) -> Passed | None:
        """One pass; None when another process is exporting. Raises what made it fail."""
        async with self._database.connection() as conn:
            passed = await export_once(
                conn, self._database_url, self._store, delay=self._delay, progress=progress
            )
        self.status.error = None
        self.status.failures = 0
        if passed is not None:  # not a pass skipped for another process's
            self.status.last_pass_at = time.time()
            LAST_SUCCESS.set(self.status.last_pass_at)
        return passed

    async def attempt(self, progress: Reporter | None = None) -> Passed | None:
        """One pass, its failure logged and counted (the next is tried after ``backoff``)."""
        try:
            return await self.once(progress)
        except (psycopg.Error, DatabaseUnavailable, StoreError, ExportError, OSError) as error:
            self._failed(error)
        except Exception as error:
            # Whatever went wrong, the next pass tries again: a loop that ended here would
            # export nothing more until the process restarts.
            _log.exception("the export pass failed")
            self._failed(error)
        return None

    async def backfill_from(self, since: date) -> None:
        """Every day from ``since`` exported again at the next pass (a backfill)."""
        async with self._database.connection() as conn:
            await exports.register(conn, self._store.destination.url, utc_now().date())
            await exports.backfill_from(conn, since)

    async def _run(self) -> None:
        while True:
            await self.attempt()
            await asyncio.sleep(self.backoff())

    def _failed(self, error: BaseException) -> None:
        FAILURES.inc()
        self.status.failures += 1
        self.status.error = str(error) or type(error).__name__
        _log.warning(
            "the export pass failed (%s); trying again in %.0f s", self.status.error, self.backoff()
        )

    def backoff(self) -> float:
        """Seconds to the next pass: the interval, or after failures a backoff from a
        second, doubling, up to it."""
        if not self.status.failures:
            return self._interval
        return min(_FIRST_BACKOFF * 2 ** (self.status.failures - 1), self._interval)


def exporter_of(database: Database, settings: Settings) -> Exporter | None:
    if settings.export_destination is None:
        return None
    return Exporter(
        database,
        settings.database_url,
        settings.export_destination,
        exporting=settings.export_in_server,
        interval=settings.export_interval,
        delay=settings.export_delay,
    )
