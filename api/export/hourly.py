"""The ``usage_hourly`` dataset (DESIGN §11): per organization, UTC hour, section and key,
the section's summary figures for that hour, read through each section's own statements
(its ``keyed_series`` and ``bucket``/``summary``, api.reads), so the figures are the reads'
own: summed over a UTC day they are the day's figures.

A date is written once it has ended (plus ``USAGE_EXPORT_DELAY``), and again for the
organizations whose figures for it changed since (api.storage.exports marks them). Its
organizations are placed in parts, each part a file holding whole organizations; an
organization stays in its part, so rewriting a part replaces that one object, in one upload.
The placement of a new organization is recorded before its part is uploaded: after a crash
the date is written again with the same placement.
"""

import asyncio
import functools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import adbc_driver_postgresql.dbapi as adbc
import msgspec
import psycopg
import pyarrow as pa
import pyarrow.compute as pc

from api.core.windows import Window
from api.export import layout
from api.export.parquet import as_type, fetched_in_one_snapshot, to_parquet
from api.export.store import Store, write_manifest
from api.reads.engine import Section
from api.reads.query import Reach, SectionQuery, Shape
from api.reads.sections import SECTIONS
from api.storage import exports
from api.storage.exports import FileRecord

DATASET = "usage_hourly"
HOUR = timedelta(hours=1)
# Rows a part grows to before a new organization starts the next one.
PART_ROWS = 100_000
_UTC = ZoneInfo("UTC")
_ORG_SHAPE = Shape(Reach.ORG)
_POSITION = "section_position"  # a section's place in SECTIONS: the rows' order within an hour

KEY_COLUMNS = ("identity_kind", "identity_id", "model", "agent_id")
_FIGURE_TYPES = {int: pa.int64(), float: pa.float64()}
FIGURES = {
    field.name: _FIGURE_TYPES[field.type]
    for section in SECTIONS
    for field in msgspec.structs.fields(section.summary_type)
}
SCHEMA = pa.schema(
    [
        pa.field("org", pa.string(), nullable=False),
        pa.field("hour", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("section", pa.string(), nullable=False),
        *(pa.field(key, pa.string()) for key in KEY_COLUMNS),
        *(pa.field(name, kind) for name, kind in FIGURES.items()),
    ],
    metadata={"dataset": DATASET},
)


def summary_figures(section: Section) -> tuple[str, ...]:
    """The section's summary fields. Its keyed series names its figures the same, and one
    bucket's summary is that bucket's figures (tests/export/test_hourly_figures.py checks it
    for every section): the export reads them from the series as they are."""
    return tuple(field.name for field in msgspec.structs.fields(section.summary_type))


def day_window(day: date) -> Window:
    start = datetime.combine(day, time(), UTC)
    return Window(
        range="custom",
        bucket="1h",
        width=HOUR,
        zone=_UTC,
        boundaries=tuple(start + hour * HOUR for hour in range(25)),
        counted_from=start,
        as_of=start + 24 * HOUR,
    )


async def org_day(
    conn: psycopg.AsyncConnection, reader: adbc.Connection, org: str, day: date
) -> pa.Table:
    """The organization's rows of ``day``: one per hour, section and key with any usage,
    every section read in one snapshot (by ``reader``; ``conn`` inlines the parameters)."""
    params = SectionQuery(window=day_window(day), org=org, top=1).params()
    inline = psycopg.AsyncClientCursor(conn).mogrify
    queries = [
        inline(statement.sql, statement.params(params))
        for statement in (section.keyed_series(_ORG_SHAPE) for section in SECTIONS)
    ]
    return await asyncio.to_thread(_org_rows, reader, queries, org)


def _org_rows(reader: adbc.Connection, queries: list[str], org: str) -> pa.Table:
    series = fetched_in_one_snapshot(reader, queries)
    found = pa.concat_tables(
        _section_rows(section, position, org, rows)
        for position, (section, rows) in enumerate(zip(SECTIONS, series, strict=True))
    )
    ordered = found.sort_by(
        [("hour", "ascending"), (_POSITION, "ascending")]
        + [(key, "ascending", "at_start") for key in KEY_COLUMNS]
    )
    return ordered.drop_columns([_POSITION])


def _section_rows(section: Section, position: int, org: str, series: pa.Table) -> pa.Table:
    """A section's keyed series as rows of SCHEMA, plus its position: the hours and keys
    with any usage. The series' figures are the summary's own (``summary_figures``); a
    figure it leaves null is a zero, as ``section.bucket`` reads it."""
    figures = summary_figures(section)
    values = {name: pc.fill_null(as_type(series[name], FIGURES[name]), 0) for name in figures}
    used = functools.reduce(pc.or_, (pc.not_equal(v, 0) for v in values.values()))
    series = series.filter(used)
    values = {name: column.filter(used) for name, column in values.items()}
    rows = series.num_rows
    columns = {
        "org": pa.array([org] * rows, pa.string()),
        "hour": as_type(series["bucket"], SCHEMA.field("hour").type),
        "section": pa.array([section.name] * rows, pa.string()),
        **{
            key: series[key] if key in section.keys else pa.nulls(rows, pa.string())
            for key in KEY_COLUMNS
        },
        **{
            name: values[name] if name in values else pa.nulls(rows, kind)
            for name, kind in FIGURES.items()
        },
    }
    table = pa.Table.from_pydict(columns, SCHEMA)
    return table.append_column(_POSITION, pa.array([position] * rows, pa.int32()))


@dataclass(slots=True)
class _Part:
    name: str
    orgs: list[str]
    rows: int = 0


def place(parts: list[_Part], counts: dict[str, int], at_most: int) -> tuple[list[_Part], set[str]]:
    """The parts with every organization of ``counts`` (its rows) that is in none placed:
    in the last part while it has room, else in a new one. The parts and the names of
    those that changed."""
    placed = {org for part in parts for org in part.orgs}
    changed = set()
    for org in sorted(counts):
        if org in placed or not counts[org]:
            continue
        if not parts or (parts[-1].orgs and parts[-1].rows + counts[org] > at_most):
            parts.append(_Part(layout.hourly_part_name(len(parts) + 1), []))
        parts[-1].orgs.append(org)
        parts[-1].rows += counts[org]
        changed.add(parts[-1].name)
    return parts, changed


class _PartWriter:
    """A date's parts written one at a time, each with every organization it holds: those
    held (just read), the others read again."""

    def __init__(
        self,
        conn: psycopg.AsyncConnection,
        reader: adbc.Connection,
        store: Store,
        day: date,
        job: int,
    ) -> None:
        self._conn, self._reader, self._store = conn, reader, store
        self._day, self._job = day, job
        self.held: dict[str, pa.Table] = {}
        self.written: dict[str, FileRecord] = {}

    async def write(self, part: _Part) -> None:
        conn, day = self._conn, self._day
        # The placement first: a crash after the upload must not place an organization
        # elsewhere.
        await exports.place(conn, DATASET, day, self._job, part.name, part.orgs)
        tables = []
        for org in part.orgs:
            held = self.held.pop(org, None)
            if held is None:
                held = await org_day(conn, self._reader, org, day)
            tables.append(held)
        built = await asyncio.to_thread(to_parquet, pa.concat_tables(tables))
        key = layout.file_key(DATASET, day, part.name)
        await asyncio.to_thread(self._store.put, key, built.data)
        self.written[part.name] = FileRecord(
            part.name, built.rows, built.bytes, built.sha256, tuple(part.orgs)
        )


@dataclass(slots=True)
class Written:
    dates: int = 0
    files: int = 0
    rows: int = 0


async def write_date(
    conn: psycopg.AsyncConnection,
    reader: adbc.Connection,
    store: Store,
    day: date,
    orgs: Iterable[str] | None,
    marks: list[tuple[str, Any]],
    written: Written,
) -> None:
    """``day``'s parts holding ``orgs`` (None: every organization with usage that day)
    written again, with its manifest; the ``marks`` (org, mark) read for it cleared."""
    job = await exports.next_job(conn)
    recorded = await exports.every_file(conn, DATASET, day)
    parts = [_Part(file.name, list(file.orgs), file.rows) for file in recorded]
    placed = {org for part in parts for org in part.orgs}
    if orgs is None:
        # And those placed before: an organization whose usage went (a rebuild) leaves its part.
        orgs = placed | set(await exports.orgs_with_usage(conn, day))
    wanted = set(orgs)
    writer = _PartWriter(conn, reader, store, day, job)
    # New organizations join the last part while it has room; a part is written as soon as
    # the next begins, so what is held is at most a part's rows, whatever the date's volume.
    open_part: _Part | None = None
    for org in sorted(wanted - placed):
        found = await org_day(conn, reader, org, day)
        parts, changed = place(parts, {org: found.num_rows}, PART_ROWS)
        if not changed:
            continue  # no usage that day
        (name,) = changed
        if open_part is not None and open_part.name != name:
            await writer.write(open_part)
        open_part = next(part for part in parts if part.name == name)
        writer.held[org] = found
    if open_part is not None:
        await writer.write(open_part)
    for part in parts:
        if wanted & set(part.orgs) and part.name not in writer.written:
            await writer.write(part)
    new_files = list(writer.written.values())
    before = await exports.partition(conn, DATASET, day)
    rewritten = {file.name for file in new_files}
    listed = [*(f for f in before.files if f.name not in rewritten), *new_files]
    generation = before.generation + 1
    await write_manifest(store, DATASET, day, generation, listed)
    async with conn.transaction():
        await exports.partition_written(conn, DATASET, day, generation, new_files, job)
        by_org: dict[str, list[tuple[date, Any]]] = {}
        for org, mark in marks:
            by_org.setdefault(org, []).append((day, mark))
        for org, org_marks in by_org.items():
            await exports.clean(conn, org, org_marks)
    written.dates += 1
    written.files += len(new_files)
    written.rows += sum(file.rows for file in new_files)


def last_exportable(now: datetime, delay: timedelta) -> date:
    """The last UTC date whose hourly figures are written: ended ``delay`` ago."""
    return (now - delay).astimezone(UTC).date() - timedelta(days=1)


async def export_hourly(
    conn: psycopg.AsyncConnection,
    reader: adbc.Connection,
    store: Store,
    first: date,
    last: date,
) -> Written:
    """Every date from ``first`` to ``last`` never written, and the organizations' dates
    marked since."""
    todo: dict[date, set[str] | None] = {}
    done = await exports.written_dates(conn, DATASET)
    day = first
    while day <= last:
        if day not in done:
            todo[day] = None
        day += timedelta(days=1)
    marks: dict[date, list[tuple[str, Any]]] = {}
    for org, day, mark in await exports.dirty(conn, last):
        marks.setdefault(day, []).append((org, mark))
        if day in todo and todo[day] is None:
            continue
        todo.setdefault(day, set()).add(org)
    written = Written()
    for day in sorted(todo):
        await write_date(conn, reader, store, day, todo[day], marks.get(day, []), written)
    return written
