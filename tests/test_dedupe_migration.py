"""Migration 0013 on a database made at 0012, whose receipts' key held the event's time, so
an event sent again with another time was stored and counted again: the first stored copy of
each event stays, the later ones leave the raw tables, and every derived figure becomes what
the first copies alone give."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import msgspec

from api.core.parsing import Accepting, BodyKind, parse_events
from api.storage import migrations
from api.storage.db import connect
from api.storage.ingest import ingest
from testkit.database import fold, reset, rows, snapshot, with_connection
from testkit.factories import (
    BASE_TIME,
    iso,
    llm_call,
    message_sent,
    thread_created,
    workload_allocated,
    workload_released,
)


def _again(event: dict, time_shift: timedelta, **data) -> dict:
    """``event`` rebuilt by its producer to retry it: the same id, another time and data."""
    moved = BASE_TIME.fromisoformat(event["time"]) + time_shift
    return {**event, "time": iso(moved), "data": {**event["data"], **data}}


def _batches() -> list[list[dict]]:
    call = llm_call(id="c1", input_tokens=100)
    allocated = workload_allocated("w1", id="wa", cpu_cores=2)
    message = message_sent("t1", org="globex", id="m1")
    return [
        [call, allocated, message, thread_created("t9", id="t9")],
        [
            _again(call, timedelta(hours=3), input_tokens=900),
            _again(allocated, timedelta(days=1), cpu_cores=8),
            workload_released("w1", id="wr", time=BASE_TIME + timedelta(days=2)),
            # Stored second, with the earlier time: it is the later copy all the same.
            _again(message, -timedelta(days=40)),
        ],
        # The same id from the same source, as another type of event.
        [message_sent("t1", id="c1", time=BASE_TIME + timedelta(minutes=7))],
    ]


@contextmanager
def _at_0012(database_url: str) -> Iterator[None]:
    """The database at 0012 for the block, then upgraded to the head. Today's ingest writes
    a column (the raw events' ``stored_at``) and reads a table (``export_state``, empty: no
    export) that came after 0013, and the snapshots read the thresholds' columns of 0016:
    they are there while the block stores events, and gone before the upgrade, which finds
    the database as the code of 0012 left it."""
    migrations.downgrade(database_url, "0012")
    shim = [
        *(f"ALTER TABLE {table} ADD COLUMN stored_at timestamptz" for table in _RAW),
        "CREATE TABLE export_state (org_id text PRIMARY KEY)",
        *(f"ALTER TABLE thresholds ADD COLUMN {column}" for column in _THRESHOLDS_LATER),
    ]
    try:
        with connect(database_url) as conn:
            for statement in shim:
                conn.execute(statement)
        yield
    finally:
        with connect(database_url) as conn:
            conn.execute("DROP TABLE IF EXISTS export_state")
            for table in _RAW:
                conn.execute(f"ALTER TABLE {table} DROP COLUMN IF EXISTS stored_at")
            for column in _THRESHOLDS_LATER:
                conn.execute(f"ALTER TABLE thresholds DROP COLUMN IF EXISTS {column.split()[0]}")
        migrations.upgrade(database_url)


_THRESHOLDS_LATER = ["previous_secret text", "rotated_at timestamptz"]


_RAW = ["llm_calls", "workload_events", "volume_events", "thread_events", "message_events"]


def _ingest(database_url: str, batches: list[list[dict]]) -> None:
    accepting = Accepting(BASE_TIME + timedelta(days=30))
    for number, batch in enumerate(batches):
        parsed = parse_events(msgspec.json.encode(batch), BodyKind.BATCH, accepting)
        with_connection(database_url, lambda conn, parsed=parsed: ingest(conn, parsed))
        if number == 0:
            fold(database_url)  # the first copies counted in the rollups, the later ones queued


def test_the_migration_keeps_the_first_stored_copy_and_rebuilds_the_figures(database_url, capsys):
    batches = _batches()
    firsts: dict[tuple, dict] = {}
    for event in (event for batch in batches for event in batch):
        firsts.setdefault((event["subject"], event["source"], event["id"]), event)
    reset(database_url)
    _ingest(
        database_url, [[event for event in batch if event in firsts.values()] for batch in batches]
    )
    fold(database_url)
    expected = snapshot(database_url)

    reset(database_url)
    with _at_0012(database_url):
        _ingest(database_url, batches)
        assert len(rows(database_url, "event_receipts")) == 9  # every copy stored at 0012
        capsys.readouterr()
    printed = capsys.readouterr().out
    fold(database_url)

    assert snapshot(database_url) == expected
    assert (
        "acme: 3 events stored more than once removed (1 from llm_calls, 1 from message_events,"
        " 1 from workload_events); its figures rebuilt from 2026-11-02" in printed
    )
    assert (
        "globex: 1 event stored more than once removed (1 from message_events);"
        " its figures rebuilt from 2026-09-23" in printed
    )


def test_the_migration_on_a_database_without_copies_says_so(database_url, capsys):
    reset(database_url)
    with _at_0012(database_url):
        _ingest(database_url, [[llm_call(id="c1")], [llm_call(id="c2")]])
        before = snapshot(database_url)
        capsys.readouterr()
    assert "no event was stored more than once" in capsys.readouterr().out
    assert snapshot(database_url) == before
