"""The raw retention (§5.1): `usage-api maintain` drops months wholly older than it; their
figures stay exact, answered from the rollups with counted edges snapped outward to five
minutes; `usage-api rebuild` leaves them as they are."""

import asyncio
import random
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from litestar.testing import TestClient

from api.settings import Settings
from api.storage import exports
from api.storage.db import connect_kwargs
from api.storage.partitions import TABLES, create_month, month_start, months_of, partition_name
from api.web.app import create_app
from testkit import oracle
from testkit.database import rows, with_connection
from testkit.factories import iso, llm_call, post_events, workload_allocated, workload_released
from testkit.matching import assert_equal, comparable
from testkit.oracle import OracleWindow, ceil_us, epoch_us, floor_us, from_us
from testkit.server import usage_api

RETENTION_DAYS = 100


@pytest.fixture
def old_month(client, db, ingest_key) -> tuple[datetime, list[dict]]:
    """A month 200 days back, full of events, in partitions of its own."""
    month = month_start(datetime.now(UTC) - timedelta(days=200))
    start = datetime(month.year, month.month, 1, tzinfo=UTC)
    rng = random.Random(3)
    events = [
        llm_call(
            time=start + timedelta(seconds=rng.randrange(27 * 86_400)),
            input_tokens=rng.randrange(100, 10_000),
            model=rng.choice(["m1", "m2"]),
        )
        for _ in range(300)
    ]
    # Inside the snapped edges of the windows the test asks for, outside their given ones.
    events += [
        llm_call(time=start + timedelta(days=1, minutes=5, seconds=30), input_tokens=77_777),
        llm_call(time=start + timedelta(days=20, hours=13, minutes=4), input_tokens=55_555),
    ]
    events += [
        workload_allocated("w-old", cpu_cores=2, time=start + timedelta(days=2, minutes=7)),
        workload_released("w-old", time=start + timedelta(days=9, seconds=13)),
    ]
    assert post_events(client, ingest_key, events).status_code == 200

    async def partition() -> None:
        async with await psycopg.AsyncConnection.connect(db, **connect_kwargs()) as conn:
            for table in TABLES:  # (another test's migration may have made the month)
                if month not in await months_of(conn, table):
                    await create_month(conn, table, month)

    asyncio.run(partition())
    return start, events


@pytest.fixture
def retained(database_url):
    """The app as configured with a raw retention of 100 days."""
    settings = Settings(
        database_url=database_url,
        rate_limit=0,
        auth_failure_rate=0,
        raw_retention_days=RETENTION_DAYS,
    )
    with TestClient(app=create_app(settings)) as client:
        yield client


def _answers(client, read_key, start: datetime) -> list[tuple[dict, dict]]:
    """Each section over a ragged window inside the month, beside the oracle's figures over
    the same window with its edges snapped outward to five minutes."""
    found = []
    begin = start + timedelta(days=1, minutes=7, seconds=13)
    end = start + timedelta(days=20, hours=13, minutes=2, seconds=59)
    for section in ("llm", "compute"):
        answer = client.get(
            f"/orgs/acme/usage/{section}",
            params={"start": iso(begin), "end": iso(end), "bucket": "1d", "top": 3},
            headers={"Authorization": f"Bearer {read_key}"},
        )
        assert answer.status_code == 200, answer.text
        found.append((section, answer.json()))
    return found


def test_a_dropped_month_is_answered_exactly_from_the_rollups(
    old_month, client, db, retained, read_key, ingest_key
):
    start, events = old_month
    month = start.date()
    recent = llm_call(time=datetime.now(UTC) - timedelta(days=RETENTION_DAYS - 1))
    assert post_events(client, ingest_key, [recent]).status_code == 200
    dropped = usage_api(db, "maintain", USAGE_RAW_RETENTION_DAYS=str(RETENTION_DAYS))
    assert dropped.returncode == 0, dropped.stderr
    assert f"dropped partition {partition_name('llm_calls', month)}" in dropped.stdout
    # The month's receipts went with it; a recent event's stays, and it is still a duplicate.
    assert f"deleted {len(events):,} receipts of events older than" in dropped.stdout
    assert [receipt[2] for receipt in rows(db, "event_receipts")] == [recent["id"]]
    assert post_events(client, ingest_key, [recent]).json() == {"accepted": 0, "duplicates": 1}

    async def months() -> list:
        async with await psycopg.AsyncConnection.connect(db, **connect_kwargs()) as conn:
            return await months_of(conn, "llm_calls")

    assert month not in asyncio.run(months())

    def check() -> None:
        for section, body in _answers(retained, read_key, start):
            window = body["window"]
            counted_from = datetime.fromisoformat(window["start"])
            as_of = datetime.fromisoformat(window["end"])
            begin = start + timedelta(days=1, minutes=7, seconds=13)
            end = start + timedelta(days=20, hours=13, minutes=2, seconds=59)
            assert counted_from == from_us(floor_us(epoch_us(begin), "5m"))
            assert as_of == from_us(ceil_us(epoch_us(end), "5m"))
            expected_window = OracleWindow.custom(counted_from, as_of, "1d")
            expected = oracle.SECTIONS[section](events, expected_window, 3, "acme")
            actual = comparable({name: body[name] for name in expected})
            assert_equal(actual, expected, section)

    check()
    rebuilt = usage_api(db, "rebuild", USAGE_RAW_RETENTION_DAYS=str(RETENTION_DAYS))
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "rebuilt from" in rebuilt.stdout
    check()  # the rebuild left the month's rollups and segments as they were


def test_a_month_not_all_exported_is_kept_until_it_is(old_month, db, tmp_path):
    start, _ = old_month
    name = partition_name("llm_calls", start.date())
    url = f"file://{tmp_path}/export"
    # A destination registered: its backfill has every month still to write.
    with_connection(db, lambda conn: exports.register(conn, url, datetime.now(UTC).date()))
    kept = usage_api(db, "maintain", USAGE_RAW_RETENTION_DAYS=str(RETENTION_DAYS))
    assert kept.returncode == 0, kept.stderr
    assert f"kept partition {name}" in kept.stdout and "not all exported" in kept.stdout
    exported = usage_api(db, "export", "--once", USAGE_EXPORT_URL=url, timeout=600)
    assert exported.returncode == 0, exported.stderr
    dropped = usage_api(db, "maintain", USAGE_RAW_RETENTION_DAYS=str(RETENTION_DAYS))
    assert f"dropped partition {name}" in dropped.stdout
    assert "kept partition" not in dropped.stdout
