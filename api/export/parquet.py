"""Rows out of PostgreSQL into Parquet files: a query's ``COPY`` as CSV, read by Arrow's
streaming CSV reader into record batches (in C++, off the GIL), split by UTC date of their
``time`` and into files of at most a million rows, each made in memory with zstd a row group
at a time and handed over whole (api.export.store publishes it in one upload).

CSV, not rows through psycopg: turning ten million rows into Python objects and back into
Arrow arrays costs seconds per million; PostgreSQL's COPY and Arrow's reader do not.
"""

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as csv
import pyarrow.parquet as pq

from api.storage.db import Compiled

MAX_ROWS = 1_000_000  # per file (DESIGN §11)
ROW_GROUP_ROWS = 128 * 1024
_MICROS_PER_DAY = 86_400_000_000
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


class _CopyStream:
    """A ``COPY ... TO STDOUT`` as the file-like object Arrow's CSV reader reads."""

    def __init__(self, copy: psycopg.Copy) -> None:
        self._copy = copy
        self._pending = bytearray()
        self._done = False
        self.closed = False

    def read(self, size: int = -1) -> bytes:
        while not self._done and (size < 0 or len(self._pending) < size):
            chunk = self._copy.read()
            if not chunk:
                self._done = True
            self._pending += chunk
        if size < 0:
            size = len(self._pending)
        taken = bytes(self._pending[:size])
        del self._pending[:size]
        return taken

    def close(self) -> None:
        self.closed = True

    def is_empty(self) -> bool:
        """Whether the COPY sends no row (Arrow's reader refuses an empty file)."""
        while not self._done and not self._pending:
            self._pending += self._copy.read() or b""
            self._done = not self._pending
        return not self._pending


async def copied_csv(
    conn: psycopg.AsyncConnection, statement: Compiled, params: dict[str, Any]
) -> bytes:
    """The rows of ``statement`` as CSV with a header line, whole: for a bounded result
    (one organization's day)."""
    query = b"COPY (" + statement.sql + b") TO STDOUT WITH (FORMAT csv, HEADER)"
    chunks = []
    async with conn.cursor().copy(query, statement.params(params)) as copy:
        async for chunk in copy:
            chunks.append(chunk)
    return b"".join(chunks)


def copied_batches(
    conn: psycopg.Connection, query: str, params: dict[str, Any], schema: pa.Schema
) -> Iterator[pa.RecordBatch]:
    """The rows of ``query`` (its columns as ``schema``'s fields, timestamps as whole
    microseconds since 1970) as record batches of ``schema``."""
    read_types = {
        field.name: pa.int64() if pa.types.is_timestamp(field.type) else field.type
        for field in schema
    }
    options = csv.ConvertOptions(
        column_types=read_types,
        null_values=[""],
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
        true_values=["t"],
        false_values=["f"],
    )
    with conn.cursor().copy(f"COPY ({query}) TO STDOUT WITH (FORMAT csv)", params) as copy:
        stream = _CopyStream(copy)
        if stream.is_empty():
            return
        reader = csv.open_csv(
            stream,
            read_options=csv.ReadOptions(column_names=schema.names, block_size=4 << 20),
            # Text may hold line breaks (in quotes).
            parse_options=csv.ParseOptions(newlines_in_values=True),
            convert_options=options,
        )
        for batch in reader:
            yield pa.RecordBatch.from_arrays(
                [
                    pc.cast(column, field.type)
                    for column, field in zip(batch.columns, schema, strict=True)
                ],
                schema=schema,
            )


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
