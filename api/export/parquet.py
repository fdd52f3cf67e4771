"""Rows out of PostgreSQL into Parquet files.

The events: a query's rows read by the ADBC PostgreSQL driver (a binary ``COPY`` decoded
into Arrow record batches in C++), split by UTC date of their ``time`` and into files of at
most a million rows, each made in memory with zstd a row group at a time and handed over
whole (api.export.store publishes it in one upload). Not rows through psycopg: turning ten
million rows into Python objects and back into Arrow arrays costs seconds per million. Nor
``COPY`` as CSV: PostgreSQL's text output of the rows cost it 40% more than the binary, and
their parsing as much again.

An organization's day of hourly figures: the same driver, each statement's rows whole (they
are bounded), all of the day's read in one snapshot.
"""

import hashlib
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import adbc_driver_postgresql.dbapi as adbc
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from psycopg.conninfo import make_conninfo

from api.storage.db import EXPORT_OPTIONS

MAX_ROWS = 1_000_000  # per file (DESIGN §11)
ROW_GROUP_ROWS = 128 * 1024
_MICROS_PER_DAY = 86_400_000_000

# Arrow's default allocator (jemalloc) keeps the pages a file freed for the next: the
# exporter's resident memory stayed 100 MB above what it used. The C library's returns them.
pa.set_memory_pool(pa.system_memory_pool())
_EPOCH = date(1970, 1, 1)


@dataclass(frozen=True, slots=True)
class Built:
    """A Parquet file made in memory."""

    data: pa.Buffer
    rows: int
    sha256: str

    @property
    def bytes(self) -> int:
        return self.data.size


class ParquetFile:
    """A Parquet file made in memory a row group at a time: what it holds is the compressed
    file and one row group's rows, never a whole table of a million rows."""

    def __init__(self, schema: pa.Schema) -> None:
        self._sink = pa.BufferOutputStream()
        self._writer = pq.ParquetWriter(
            self._sink,
            schema,
            compression="zstd",
            # Whole-microsecond UTC timestamps, as readers (DuckDB, Spark, pandas) expect.
            coerce_timestamps="us",
            write_statistics=True,
        )
        self._held: list[pa.RecordBatch] = []
        self._held_rows = 0
        self.rows = 0

    def write(self, batch: pa.RecordBatch) -> None:
        self._held.append(batch)
        self._held_rows += batch.num_rows
        self.rows += batch.num_rows
        if self._held_rows >= ROW_GROUP_ROWS:
            self._write_held()

    def _write_held(self) -> None:
        if self._held:
            table = pa.Table.from_batches(self._held)
            self._writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
        self._held, self._held_rows = [], 0

    def close(self) -> "Built":
        self._write_held()
        self._writer.close()
        data = self._sink.getvalue()
        return Built(data=data, rows=self.rows, sha256=hashlib.sha256(data).hexdigest())


def to_parquet(table: pa.Table) -> Built:
    file = ParquetFile(table.schema)
    for batch in table.to_batches():
        file.write(batch)
    return file.close()


def reader_connection(database_url: str) -> adbc.Connection:
    """A connection of the ADBC PostgreSQL driver: a query's rows arrive by binary ``COPY``
    and become Arrow arrays in C++, no text formatted by PostgreSQL nor parsed here."""
    return adbc.connect(make_conninfo(database_url, options=EXPORT_OPTIONS))


def fetched_batches(
    reader: adbc.Connection, query: str, schema: pa.Schema
) -> Iterator[pa.RecordBatch]:
    """The rows of ``query`` (its columns as ``schema``'s fields) as record batches of
    ``schema``, a few megabytes at a time."""
    with closing(reader.cursor()) as cursor:
        cursor.execute(query)
        with closing(cursor.fetch_record_batch()) as batches:
            for batch in batches:
                yield pa.RecordBatch.from_arrays(
                    [
                        as_type(column, field.type)
                        for column, field in zip(batch.columns, schema, strict=True)
                    ],
                    schema=schema,
                )


def as_type(column: pa.Array | pa.ChunkedArray, kind: pa.DataType) -> Any:
    """``column`` as ``kind``: the driver gives a numeric as an extension type over its
    text, and PostgreSQL's sums of integers are numerics."""
    if isinstance(column, pa.ChunkedArray):
        return pa.chunked_array([as_type(chunk, kind) for chunk in column.chunks], kind)
    if isinstance(column.type, pa.ExtensionType):
        column = column.storage
    return column if column.type == kind else pc.cast(column, kind)


def fetched_in_one_snapshot(reader: adbc.Connection, queries: list[str]) -> list[pa.Table]:
    """The rows of each query, whole (bounded results: an organization's day), all read in
    one snapshot."""
    with closing(reader.cursor()) as cursor:
        # The driver's connection is in a transaction from its first statement.
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        tables = []
        for query in queries:
            cursor.execute(query)
            tables.append(cursor.fetch_arrow_table())
    reader.rollback()
    return tables


def files_by_date(batches: Iterator[pa.RecordBatch]) -> Iterator[tuple[date, Built]]:
    """Batches in ``time`` order as Parquet files: per UTC date of their ``time``, files of
    at most MAX_ROWS rows (a date's rows in several files if it has more)."""
    day: date | None = None
    file: ParquetFile | None = None
    for batch in batches:
        days = pc.divide(pc.cast(batch.column("time"), pa.int64()), _MICROS_PER_DAY)
        day_numbers = pc.unique(days).to_pylist()
        for day_number in day_numbers:
            part = batch if len(day_numbers) == 1 else batch.filter(pc.equal(days, day_number))
            this_day = _EPOCH + timedelta(days=day_number)
            if file is not None and this_day != day:
                yield day, file.close()
                file = None
            day = this_day
            while part.num_rows:
                file = file or ParquetFile(batch.schema)
                room = MAX_ROWS - file.rows
                file.write(part.slice(0, room))
                part = part.slice(room)
                if file.rows == MAX_ROWS:
                    yield day, file.close()
                    file = None
    if file is not None:
        yield day, file.close()
