"""Monthly partitions of the raw events: the migration that makes them keeps
every row, `usage-api maintain` creates the months ahead (idempotently) and moves rows that
waited in a default partition into their month."""

import asyncio
import itertools
from datetime import UTC, datetime, timedelta

import psycopg

from api.storage import migrations
from api.storage.db import connect_kwargs
from api.storage.partitions import (
    TABLES,
    create_month,
    month_start,
    months_of,
    next_month,
    partition_name,
)
from testkit.database import reset, snapshot
from testkit.factories import llm_call, one_of_each, post_events
from testkit.server import usage_api


def _months(database_url: str, table: str):
    async def run():
        async with await psycopg.AsyncConnection.connect(database_url, **connect_kwargs()) as conn:
            return await months_of(conn, table)

    return asyncio.run(run())


def test_the_migration_partitions_a_filled_database_without_losing_a_row(
    client, database_url, ingest_key
):
    reset(database_url)
    events = [*one_of_each(), llm_call(time=datetime(2025, 6, 3, tzinfo=UTC))]
    assert post_events(client, ingest_key, events).status_code == 200
    partitioned = snapshot(database_url)
    migrations.downgrade(database_url, "0006")
    assert _months(database_url, "llm_calls") == []  # a plain table again
    migrations.upgrade(database_url)
    assert snapshot(database_url) == partitioned
    # From the oldest event's month (June 2025) to three months ahead, every month.
    months = _months(database_url, "llm_calls")
    assert months[0].isoformat() == "2025-06-01"
    assert all(next_month(a) == b for a, b in itertools.pairwise(months))


def test_maintain_creates_the_months_ahead_once(db):
    first = usage_api(db, "maintain")
    assert first.returncode == 0, first.stderr
    this_month = month_start(datetime.now(UTC))
    for table in TABLES:
        months = _months(db, table)
        assert this_month in months
        assert next_month(next_month(next_month(this_month))) in months
    again = usage_api(db, "maintain")
    assert again.returncode == 0, again.stderr
    assert "nothing to do" in again.stdout


def test_a_month_created_late_takes_its_rows_from_the_default_partition(client, db, ingest_key):
    long_ago = datetime.now(UTC) - timedelta(days=800)
    month = month_start(long_ago)
    assert month not in _months(db, "llm_calls")
    assert post_events(client, ingest_key, [llm_call(time=long_ago)]).status_code == 200
    before = snapshot(db)

    async def create():
        async with await psycopg.AsyncConnection.connect(db, **connect_kwargs()) as conn:
            return await create_month(conn, "llm_calls", month)

    assert asyncio.run(create()) == 1
    assert snapshot(db) == before
    with psycopg.connect(db) as conn:
        (moved,) = conn.execute(
            f"SELECT count(*) FROM {partition_name('llm_calls', month)}"
        ).fetchall()
        (left,) = conn.execute("SELECT count(*) FROM llm_calls_default").fetchall()
    assert moved == (1,) and left == (0,)
