"""A request's wait for a pooled connection while every one is busy (api.storage.availability):
as long as the checkout timeout (USAGE_DB_CHECKOUT_TIMEOUT), then refused; and however long
that timeout, no longer than an outage's grace."""

import asyncio

import psycopg
import pytest
from psycopg_pool import PoolTimeout

from api.settings import DEFAULT_DB_CHECKOUT_TIMEOUT
from api.storage import availability
from api.storage.availability import Database, DatabaseUnavailable
from testkit.database import new_database

# Longer than any wait these tests expect: a request refused sooner was refused for its reason.
PATIENT = 60


async def _with_the_only_connection_held(database_url: str, checkout_timeout: float, hold: float):
    """A pool of one whose connection is held ``hold`` seconds (or until the request waiting
    for one gives up) while a request asks for one: what that request's query answers."""
    database = Database(database_url, pool_size=1, checkout_timeout=checkout_timeout)
    await database.open()
    try:
        async with database.connection() as busy:
            await busy.execute("SELECT 1")
            waiting = asyncio.create_task(_request(database))
            await asyncio.wait([waiting], timeout=hold)
        return await waiting
    finally:
        await database.close()


async def _request(database: Database) -> int:
    async with database.connection() as conn:
        return (await (await conn.execute("SELECT 42")).fetchone())[0]


def test_a_request_waits_for_a_busy_pool_as_long_as_the_checkout_timeout(database_url):
    # Held past the default timeout: a request that waited only that long would be refused.
    held = DEFAULT_DB_CHECKOUT_TIMEOUT + 0.5
    assert asyncio.run(_with_the_only_connection_held(database_url, PATIENT, held)) == 42


def test_past_the_checkout_timeout_a_request_is_refused(database_url):
    with pytest.raises(PoolTimeout):
        asyncio.run(_with_the_only_connection_held(database_url, 0.3, PATIENT))


def test_a_request_waiting_for_a_busy_pool_is_refused_once_an_outage_passes_the_grace(postgres):
    """The only connection dies while a request waits for it, and the database refuses new
    ones: the request is refused once the outage is older than the grace, not left waiting
    out a long checkout timeout."""
    with new_database(postgres.url, "checkout_outage") as url:
        admin_url = postgres.url.replace("/usage?", "/postgres?")

        def take_the_database_away() -> None:
            with psycopg.connect(admin_url, autocommit=True) as admin:
                admin.execute("ALTER DATABASE checkout_outage WITH ALLOW_CONNECTIONS false")
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = 'checkout_outage'"
                )

        async def waiting_through_an_outage() -> None:
            database = Database(url, pool_size=1, checkout_timeout=PATIENT)
            await database.open()
            try:
                # The connection found dead is the sign of trouble that starts the probe.
                with pytest.raises(psycopg.OperationalError):
                    async with database.connection() as busy:
                        await busy.execute("SELECT 1")
                        waiting = asyncio.create_task(_request(database))
                        await asyncio.to_thread(take_the_database_away)
                        await busy.execute("SELECT 1")
                with pytest.raises(DatabaseUnavailable):
                    await waiting
            finally:
                await database.close()

        asyncio.run(waiting_through_an_outage())


async def _backend_pids(database: Database, requests: int) -> list[int]:
    """The backend that serves each of ``requests`` requests, one after another."""
    pids = []
    for _ in range(requests):
        async with database.connection() as conn:
            pids.append((await (await conn.execute("SELECT pg_backend_pid()")).fetchone())[0])
    return pids


async def _pids_of_requests(database_url: str, requests: int) -> list[int]:
    database = Database(database_url, pool_size=1, checkout_timeout=PATIENT)
    await database.open()
    try:
        return await _backend_pids(database, requests)
    finally:
        await database.close()


@pytest.fixture
def checks(monkeypatch) -> list[int]:
    """The backends the pool's check planned for the engine, in order."""
    checked: list[int] = []
    plan = availability.plan_for_engine

    async def counted(conn: psycopg.AsyncConnection) -> None:
        checked.append(conn.pgconn.backend_pid)
        await plan(conn)

    monkeypatch.setattr(availability, "plan_for_engine", counted)
    return checked


@pytest.mark.parametrize("recheck_after", [3600, 0])
def test_a_connection_checked_within_recheck_after_is_handed_out_unchecked(
    database_url, checks, monkeypatch, recheck_after
):
    """The pool's check is a statement: a connection checked less than RECHECK_AFTER ago
    skips it, and one checked longer ago runs it again."""
    monkeypatch.setattr(availability, "RECHECK_AFTER", recheck_after)
    pids = asyncio.run(_pids_of_requests(database_url, 5))
    assert len(set(pids)) == 1  # the pool's one connection served all five
    assert checks == (pids[:1] if recheck_after else pids)


def test_a_connection_whose_backend_was_ended_is_checked_however_recently(
    postgres, checks, monkeypatch
):
    """A backend terminated between two requests (as by a restart of PostgreSQL) sends its
    last error, and its socket turns readable: the next request's checkout checks it, finds
    it dead and serves the request on a new connection, however recent the last check."""
    monkeypatch.setattr(availability, "RECHECK_AFTER", 3600)
    with new_database(postgres.url, "checkout_recheck") as url:

        async def across_a_terminated_backend() -> tuple[list[int], list[int]]:
            database = Database(url, pool_size=1, checkout_timeout=PATIENT)
            await database.open()
            try:
                before = await _backend_pids(database, 2)
                async with await psycopg.AsyncConnection.connect(url, autocommit=True) as admin:
                    await admin.execute("SELECT pg_terminate_backend(%s, 60000)", [before[0]])
                return before, await _backend_pids(database, 2)
            finally:
                await database.close()

        before, after = asyncio.run(across_a_terminated_backend())
    assert len(set(before)) == 1 and len(set(after)) == 1
    assert after[0] != before[0]
    # Checked when first handed out, then again when its socket spoke; the new connection
    # once, when first handed out.
    assert checks == [before[0], before[0], after[0]]
