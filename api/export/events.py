"""The events datasets (DESIGN §11): append-only, each stored event in exactly one file.

A job (api.storage.exports) takes the queue's events; its files are made from the raw rows
of the keys it tagged, in ``time`` order, named after the job, so a job written again after a
crash writes the same files over the same names. The manifests of the partitions it touched
are written next, then the transaction that records them and deletes the job's queue rows.

A backfill rewrites a date's partitions whole: every event of that date but those still
queued (which jobs append after), in files of a job of its own; the new manifest lists those
alone and the files it replaced are deleted after. Its files are recorded before they are
uploaded, so that after a crash the ones no manifest lists are deleted (and the date done
again), and the ones a manifest lists are kept as listed.

The files are made in a worker thread with connections of its own (rows straight into
Arrow, api.export.parquet): the event loop is left to the requests.
"""

import asyncio
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import psycopg
from sqlalchemy import (
    BigInteger,
    DateTime,
    Select,
    and_,
    any_,
    bindparam,
    exists,
    func,
    select,
    true,
)

from api.export import layout
from api.export.datasets import EVENT_DATASETS, EventDataset
from api.export.parquet import fetched_batches, files_by_date, reader_connection
from api.export.store import Store, write_manifest
from api.storage import exports
from api.storage.db import Compiled, compile_statement, connect, execute
from api.storage.exports import FileRecord
from api.storage.schema import export_files, export_pending, orgs

JOB_EVENTS = 1_000_000  # events one job takes at most: a file is made in memory at a time
DAY = timedelta(days=1)
_JOB = bindparam("job", type_=BigInteger)
_DAY_START = bindparam("day_start", type_=DateTime(timezone=True))


class ExportError(Exception):
    """What the exporter found wrong (a job whose events are not all in the raw tables)."""


def _keys() -> Any:
    return (
        func.unnest(export_pending.c.sources, export_pending.c.event_ids, export_pending.c.times)
        .table_valued("source", "event_id", "time")
        .render_derived()
        .lateral("k")
    )


def _same_event(raw: Any, keys: Any) -> Any:
    return and_(
        raw.c.org_id == export_pending.c.org_id,
        raw.c.source == keys.c.source,
        raw.c.event_id == keys.c.event_id,
        raw.c.time == keys.c.time,
    )


def _in_order(statement: Select, dataset: EventDataset) -> Select:
    raw = dataset.raw
    return statement.order_by(raw.c.time, raw.c.org_id, raw.c.source, raw.c.event_id)


def _job_rows(dataset: EventDataset) -> Compiled:
    """The raw rows of the job's keys of ``dataset``, in time order."""
    keys = _keys()
    rows = export_pending.join(keys, true()).join(dataset.raw, _same_event(dataset.raw, keys))
    statement = (
        select(*dataset.values())
        .select_from(dataset.named(rows))
        .where(export_pending.c.job_id == _JOB, export_pending.c.dataset == dataset.name)
    )
    return compile_statement(_in_order(statement, dataset))


def _date_rows(dataset: EventDataset) -> Compiled:
    """The raw rows of ``dataset`` on the date but those still queued, in time order. By
    organization (every index leads with it), so each is a range scan of its day."""
    raw, keys = dataset.raw, _keys()
    queued = exists(
        select(keys.c.source)
        .select_from(export_pending.join(keys, true()))
        .where(export_pending.c.dataset == dataset.name, _same_event(raw, keys))
    )
    every_org = func.array(select(orgs.c.org_id).scalar_subquery())
    statement = (
        select(*dataset.values())
        .select_from(dataset.named(raw))
        .where(
            raw.c.org_id == any_(every_org),
            raw.c.time >= _DAY_START,
            raw.c.time < _DAY_START + DAY,
            ~queued,
        )
    )
    return compile_statement(_in_order(statement, dataset))


_JOB_ROWS = {dataset.name: _job_rows(dataset) for dataset in EVENT_DATASETS}
_DATE_ROWS = {dataset.name: _date_rows(dataset) for dataset in EVENT_DATASETS}
_JOB_COUNTS = compile_statement(
    select(export_pending.c.dataset, func.sum(func.cardinality(export_pending.c.event_ids)))
    .where(export_pending.c.job_id == _JOB)
    .group_by(export_pending.c.dataset)
)

# A partition's new files, keyed (dataset, date).
Written = dict[tuple[str, date], list[FileRecord]]


def _make_files(
    database_url: str,
    store: Store,
    runs: list[tuple[EventDataset, Compiled, dict[str, Any]]],
    job: int,
    before_upload: Callable[[str, date, FileRecord], None] = lambda *_: None,
) -> Written:
    """The files of each run's rows, uploaded; ``before_upload`` is told of each first.
    A file uploads while the next is made (one upload at a time: memory holds two files)."""
    written: Written = {}
    with (
        connect(database_url) as conn,
        closing(reader_connection(database_url)) as reader,
        ThreadPoolExecutor(1) as uploads,
    ):
        uploading: Future[None] = uploads.submit(lambda: None)
        for dataset, statement, params in runs:
            # The parameters inlined by psycopg, as it does for a COPY.
            query = psycopg.ClientCursor(conn).mogrify(statement.sql, statement.params(params))
            batches = fetched_batches(reader, query, dataset.schema)
            # Closed whatever happens: a COPY left open would hold the connection's close.
            with closing(batches):
                for day, built in files_by_date(batches):
                    files = written.setdefault((dataset.name, day), [])
                    name = layout.events_file_name(job, len(files))
                    record = FileRecord(name, built.rows, built.bytes, built.sha256)
                    before_upload(dataset.name, day, record)
                    uploading.result()
                    key = layout.file_key(dataset.name, day, name)
                    uploading = uploads.submit(store.put, key, built.data)
                    files.append(record)
        uploading.result()
    return written


@dataclass(frozen=True, slots=True)
class Exported:
    """What a job or a backfill's date wrote."""

    rows_by_dataset: dict[str, int]
    files_by_dataset: dict[str, int]

    @classmethod
    def of(cls, written: Written) -> "Exported":
        rows: dict[str, int] = {}
        files: dict[str, int] = {}
        for (dataset, _), records in written.items():
            rows[dataset] = rows.get(dataset, 0) + sum(record.rows for record in records)
            files[dataset] = files.get(dataset, 0) + len(records)
        return cls(rows, files)

    @property
    def events(self) -> int:
        return sum(self.rows_by_dataset.values())

    @property
    def files(self) -> int:
        return sum(self.files_by_dataset.values())


async def write_job(
    conn: psycopg.AsyncConnection, database_url: str, store: Store, job: int
) -> Exported:
    """The job's events into files, listed in their partitions' manifests; its queue rows
    then deleted. Done again whole after a crash at any point."""
    counts = dict(await (await execute(conn, _JOB_COUNTS, job=job)).fetchall())
    runs = [(d, _JOB_ROWS[d.name], {"job": job}) for d in EVENT_DATASETS if d.name in counts]
    written = await asyncio.to_thread(_make_files, database_url, store, runs, job)
    for dataset, expected in counts.items():
        found = sum(
            f.rows for (name, _), files in written.items() if name == dataset for f in files
        )
        if found != expected:
            raise ExportError(
                f"job {job}: {expected} {dataset} events queued, {found} found in the raw"
                " events; nothing of the job is listed"
            )
    listed = {}
    for (dataset, day), files in sorted(written.items()):
        before = await exports.partition(conn, dataset, day)
        names = {file.name for file in files}
        kept = [file for file in before.files if file.name not in names]
        listed[(dataset, day)] = before.generation + 1
        await write_manifest(store, dataset, day, before.generation + 1, kept + files)
    async with conn.transaction():
        for (dataset, day), files in written.items():
            await exports.partition_written(conn, dataset, day, listed[(dataset, day)], files, job)
        await exports.finish(conn, job)
    return Exported.of(written)


async def backfill_date(
    conn: psycopg.AsyncConnection, database_url: str, store: Store, day: date
) -> Exported:
    """Every events partition of ``day`` written again whole (api.export docstring)."""
    job = await exports.next_job(conn)
    loop = asyncio.get_running_loop()

    def record(dataset: str, file_day: date, file: FileRecord) -> None:
        asyncio.run_coroutine_threadsafe(
            exports.record_files(conn, dataset, file_day, job, [file], "writing"), loop
        ).result()

    day_start = datetime.combine(day, time(), UTC)
    runs = [(d, _DATE_ROWS[d.name], {"day_start": day_start}) for d in EVENT_DATASETS]
    written = await asyncio.to_thread(_make_files, database_url, store, runs, job, record)
    replaced = []
    for dataset in EVENT_DATASETS:
        files = written.get((dataset.name, day), [])
        if not files:
            # Nothing stored that day (or no more: the raw retention dropped it): what was
            # exported stays.
            continue
        before = await exports.partition(conn, dataset.name, day)
        generation = before.generation + 1
        await write_manifest(store, dataset.name, day, generation, files)
        replaced.append((dataset.name, generation, files))
    async with conn.transaction():
        for dataset, generation, files in replaced:
            await exports.partition_written(
                conn, dataset, day, generation, files, job, replacing=True
            )
    await delete_superseded(conn, store)
    return Exported.of(written)


async def delete_superseded(conn: psycopg.AsyncConnection, store: Store) -> None:
    """The objects no manifest lists any more, deleted (then forgotten)."""
    for dataset, day, name in await exports.superseded(conn):
        await asyncio.to_thread(store.delete, layout.file_key(dataset, day, name))
        await exports.forget_file(conn, dataset, day, name)


_UNLISTED = compile_statement(
    select(export_files.c.dataset, export_files.c.date, export_files.c.name, export_files.c.job_id)
    .where(export_files.c.state == "writing", export_files.c.dataset != "usage_hourly")
    .order_by(export_files.c.dataset, export_files.c.date, export_files.c.name)
)


async def recover_backfill(conn: psycopg.AsyncConnection, store: Store) -> None:
    """A backfill's files left unlisted by a crash: kept as listed where the partition's
    manifest (written after them) lists them, else deleted; superseded files deleted."""
    rows = await (await execute(conn, _UNLISTED)).fetchall()
    by_partition: dict[tuple[str, date], list[tuple[str, int]]] = {}
    for dataset, day, name, job in rows:
        by_partition.setdefault((dataset, day), []).append((name, job))
    for (dataset, day), files in by_partition.items():
        data = await asyncio.to_thread(store.get, layout.manifest_key(dataset, day))
        written = layout.read_manifest(data) if data else None
        before = await exports.partition(conn, dataset, day)
        names = {name for name, _ in files}
        if written is not None and written.generation > before.generation:
            listed = [FileRecord(f.name, f.rows, f.bytes, f.sha256) for f in written.files]
            if names <= {f.name for f in listed}:
                async with conn.transaction():
                    await exports.partition_written(
                        conn, dataset, day, written.generation, listed, files[0][1], replacing=True
                    )
                continue
        for name, _ in files:
            await asyncio.to_thread(store.delete, layout.file_key(dataset, day, name))
            await exports.forget_file(conn, dataset, day, name)
    await delete_superseded(conn, store)
