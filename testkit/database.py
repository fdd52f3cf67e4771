"""Reading and clearing the test database's tables."""

import asyncio
import io
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import msgspec
import psycopg
from sqlalchemy import Table, delete, select

from api.core.parsing import Accepting
from api.storage import reservations, rollups
from api.storage.db import compile_statement, connect, connect_kwargs, execute_sync
from api.storage.folding import PENDING_TABLES, QUEUES, Folded, fold_all, fold_org
from api.storage.imports import import_events
from api.storage.rebuild import rebuild as rebuild_derived
from api.storage.schema import (
    RAW_TABLES,
    api_keys,
    export_dirty,
    export_files,
    export_partitions,
    export_pending,
    export_state,
    metadata,
    orgs,
    threshold_tests,
)
from testkit.server import ANY_AGE

# Everything a batch of events can change; api_keys belong to the session's fixtures. The
# exporter's bookkeeping is cleared with the events but is no state of theirs: its rows name
# transactions and jobs, which another batching of the same events names otherwise; nor are
# the test webhooks a threshold was sent on request.
EVENT_TABLES = [table for table in metadata.sorted_tables if table is not api_keys]
_NOT_STATE = {
    export_dirty,
    export_files,
    export_partitions,
    export_pending,
    export_state,
    threshold_tests,
}
_STATE_TABLES = [table for table in EVENT_TABLES if table not in _NOT_STATE]
_VOLATILE_COLUMNS = {
    orgs.c.created_at,
    api_keys.c.created_at,
    *(table.c.received_at for table in PENDING_TABLES),
    *(table.c.stored_at for table in RAW_TABLES),
}
# What ingest derives from the raw events.
DERIVED_TABLES = [
    *(table for family in rollups.ALL for table in family.tables.values()),
    *(table for reserved in reservations.ALL for table in reserved.tables),
]
# A bucket whose reservation changes cancel out reads as one without changes, and an agent
# holding nothing as one never seen: ingest may leave such rows (an allocation and its
# release in one batch, or in two) where a rebuild, or another batching, writes none.
_ZERO_MEANS_NONE = {
    table for reserved in reservations.ALL for table in (*reserved.change_rollups, reserved.held)
}


def reset(database_url: str) -> None:
    _clear(database_url, EVENT_TABLES)


def fold(database_url: str) -> Folded:
    """Every queued event folded into the rollups (api.storage.folding)."""
    return with_connection(database_url, fold_all)


def fold_one(database_url: str, queue_name: str, org: str, *, commit: bool = True) -> int | None:
    """One organization's queue folded, or (not ``commit``) folded and rolled back as an
    interrupted fold is: the rows folded, None if another folder held the queue."""
    queue = next(queue for queue in QUEUES if queue.name == queue_name)

    async def run(conn: psycopg.AsyncConnection) -> int | None:
        async with conn.transaction(force_rollback=not commit):
            return await fold_org(conn, queue, org)

    return with_connection(database_url, run)


def rebuild(database_url: str, org: str | None = None) -> None:
    """`usage-api rebuild`'s work (api.storage.rebuild), in this process."""
    with_connection(database_url, lambda conn: rebuild_derived(conn, org))


def truncate_derived(database_url: str) -> None:
    _clear(database_url, DERIVED_TABLES)


def _clear(database_url: str, tables: list[Table]) -> None:
    """Every row of ``tables`` deleted, in one transaction. DELETE, not TRUNCATE: the tests'
    tables hold a few rows, and on Citus a TRUNCATE visits every shard of every partition
    (about a second; DELETE takes a tenth of that)."""
    with connect(database_url) as conn, conn.transaction():
        for table in tables:
            execute_sync(conn, compile_statement(delete(table)))


def _sorted_rows(conn: psycopg.Connection, table: Table) -> list[tuple[Any, ...]]:
    columns = [c for c in table.columns if c not in _VOLATILE_COLUMNS]
    statement = compile_statement(select(*columns).order_by(*columns))
    found = conn.execute(statement.sql, statement.defaults).fetchall()
    if table not in _ZERO_MEANS_NONE:
        return found
    measures = [i for i, c in enumerate(columns) if not c.primary_key]
    return [row for row in found if any(row[i] != 0 for i in measures)]


def snapshot(database_url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table events change, sorted: equal snapshots, equal state. The
    queued events are folded first: what the server's folder had folded so far is timing,
    not state."""
    fold(database_url)
    with connect(database_url) as conn:
        return {table.name: _sorted_rows(conn, table) for table in _STATE_TABLES}


def rows(database_url: str, table_name: str) -> list[tuple[Any, ...]]:
    """A table's rows, sorted, without the columns that hold the time of writing; the queued
    events folded first (``rows_as_they_are`` does not fold)."""
    fold(database_url)
    return rows_as_they_are(database_url, table_name)


def rows_as_they_are(database_url: str, table_name: str) -> list[tuple[Any, ...]]:
    """A table's rows as they are, sorted, without the columns that hold the time of writing."""
    with connect(database_url) as conn:
        return _sorted_rows(conn, metadata.tables[table_name])


def with_connection(database_url: str, action: Callable[[psycopg.AsyncConnection], Any]) -> Any:
    """``action(conn)`` run to completion on a connection of its own."""

    async def run() -> Any:
        async with await psycopg.AsyncConnection.connect(database_url, **connect_kwargs()) as conn:
            return await action(conn)

    # In a thread of its own: Playwright's sync API keeps an event loop on the main thread.
    with ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(asyncio.run, run()).result()


@contextmanager
def new_database(cluster_url: str, name: str) -> Iterator[str]:
    """A new empty database ``name`` beside the cluster's ``usage`` database: its URL, and
    the database dropped on exit."""
    admin_url = cluster_url.replace("/usage?", "/postgres?")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield cluster_url.replace("/usage?", f"/{name}?")
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


def import_batch(database_url: str, batch: list[dict]) -> None:
    """The events stored as `usage-api import` stores a file holding them."""
    file = io.BytesIO(b"".join(msgspec.json.encode(event) + b"\n" for event in batch))
    accepting = Accepting.imported(datetime.now(UTC), ANY_AGE["raw_retention_days"])

    async def run(conn):
        return await import_events(conn, file, accepting, report=io.StringIO())

    result = with_connection(database_url, run)
    assert result.invalid == 0 and result.accepted + result.duplicates == len(batch)
