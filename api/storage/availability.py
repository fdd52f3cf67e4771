"""The server's database: its connection pool, and what the server knows of the database's
availability, so an outage costs a request at most a short wait.

A sign of trouble (a connection found dead, no connection within the checkout timeout)
starts one background probe that connects every ``PROBE_INTERVAL``. While the probe fails
the database is *down*: a request waits for it to come back, but never past ``GRACE``
after the outage began (a restart of PostgreSQL takes about a second), and once the outage
is older than that, it is refused at once. When the probe connects again the pool is
replaced by a new one, which connects at once where the old one would keep backing off.

While the database answers but every connection is busy, a request waits for one up to the
checkout timeout (``USAGE_DB_CHECKOUT_TIMEOUT``, 2 s by default), then is answered 503: a
wait in wall time, which a process starved of CPU spends without being served (the tests'
servers, on a loaded machine, wait as long as the tests do).
"""

import asyncio
import logging
import select
import time
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolClosed, PoolTimeout

from api.settings import DEFAULT_DB_CHECKOUT_TIMEOUT
from api.storage.db import connect_kwargs, create_pool, plan_for_engine

GRACE = 2.0  # seconds: how long an outage may last before requests are refused at once
PROBE_INTERVAL = 0.1
_SLICE = 0.25  # seconds: how soon a waiting request sees that the pool was replaced
# seconds: how long a connection's last check holds while its socket stays silent; also how
# soon each connection plans for an engine that became Citus (`usage-api distribute`)
RECHECK_AFTER = 1.0

_log = logging.getLogger("api.database")


class DatabaseUnavailable(Exception):
    """The database is down: answered 503 with Retry-After."""


class DatabaseReadOnly(DatabaseUnavailable):
    """The database answers but takes no writes (a standby, or set read-only)."""


class Database:
    def __init__(
        self, url: str, pool_size: int, checkout_timeout: float = DEFAULT_DB_CHECKOUT_TIMEOUT
    ) -> None:
        self._url = url
        self._pool_size = pool_size
        self._checkout_timeout = checkout_timeout
        self.pool = self._new_pool()
        self._down_since: float | None = None
        self._up = asyncio.Event()
        self._up.set()
        self._probe: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[None]] = set()
        self._checked_at: weakref.WeakKeyDictionary[psycopg.AsyncConnection, float] = (
            weakref.WeakKeyDictionary()
        )

    def _new_pool(self) -> AsyncConnectionPool:
        return create_pool(self._url, self._pool_size, check=self._check)

    async def open(self) -> None:
        # Not waiting: the service starts while PostgreSQL is down and answers 503 meanwhile.
        await self.pool.open(wait=False)

    async def close(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
        await asyncio.gather(*self._closing, return_exceptions=True)
        await self.pool.close()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection]:
        """A pooled connection, or ``DatabaseUnavailable`` without waiting past the grace."""
        await self._wait_while_down()
        pool, conn = await self._checkout()
        try:
            yield conn
        except psycopg.OperationalError:
            if conn.broken:
                self.suspect()
            raise
        finally:
            await pool.putconn(conn)

    async def _wait_while_down(self) -> None:
        if self._down_since is None:
            return
        remaining = self._down_since + GRACE - time.monotonic()
        try:
            async with asyncio.timeout(max(remaining, 0)):
                await self._up.wait()
        except TimeoutError:
            raise DatabaseUnavailable from None

    async def _checkout(self) -> tuple[AsyncConnectionPool, psycopg.AsyncConnection]:
        """A connection within the checkout timeout, asked for in slices so that a request
        that waited on a pool replaced meanwhile moves to the new one, and one waiting when
        an outage passes the grace is refused then, however long the timeout."""
        deadline = time.monotonic() + self._checkout_timeout
        while True:
            pool = self.pool
            remaining = deadline - time.monotonic()
            try:
                return pool, await pool.getconn(timeout=max(min(_SLICE, remaining), 0.001))
            except PoolTimeout:
                if time.monotonic() >= deadline:
                    self.suspect()
                    raise
                if self._down_since is not None and time.monotonic() > self._down_since + GRACE:
                    raise DatabaseUnavailable from None
            except PoolClosed:
                if pool is self.pool:
                    raise

    async def _check(self, conn: psycopg.AsyncConnection) -> None:
        """The pool's check of a connection it hands out (one statement, which also keeps
        its planning right for the engine): a dead one is a sign of trouble.

        A connection checked less than ``RECHECK_AFTER`` ago is handed out unchecked while
        its socket is silent: a backend that is stopped sends its last error or closes the
        socket, either of which makes it readable. That spares a busy server's requests a
        round trip each (a small read's statements take one)."""
        checked_at = self._checked_at.get(conn)
        now = time.monotonic()
        if checked_at is not None and now - checked_at < RECHECK_AFTER and not _readable(conn):
            return
        try:
            await plan_for_engine(conn)
        except Exception:
            self.suspect()
            raise
        self._checked_at[conn] = now

    def suspect(self) -> None:
        """Something looked like an outage: probe, unless a probe already runs."""
        if self._probe is None:
            self._probe = asyncio.get_running_loop().create_task(self._probe_until_up())

    async def _probe_until_up(self) -> None:
        try:
            while not await self._answers():
                if self._down_since is None:
                    self._down_since = time.monotonic()
                    self._up.clear()
                    _log.warning("the database is unreachable; requests get 503 meanwhile")
                await asyncio.sleep(PROBE_INTERVAL)
            if self._down_since is not None:
                await self._replace_pool()
                _log.warning(
                    "the database is back after %.1f s", time.monotonic() - self._down_since
                )
                self._down_since = None
                self._up.set()
        finally:
            self._probe = None

    async def _answers(self) -> bool:
        try:
            conn = await psycopg.AsyncConnection.connect(self._url, **connect_kwargs())
        except psycopg.Error:
            return False
        await conn.close()
        return True

    async def _replace_pool(self) -> None:
        new = self._new_pool()
        await new.open(wait=False)
        old, self.pool = self.pool, new
        # Requests still waiting on the old pool are told it closed and move to the new one.
        closing = asyncio.get_running_loop().create_task(old.close())
        self._closing.add(closing)
        closing.add_done_callback(self._closing.discard)


def _readable(conn: psycopg.AsyncConnection) -> bool:
    """Whether the server sent something to an idle connection: its last error or the end of
    the connection, most likely."""
    poller = select.poll()  # not select.select: a busy server's sockets pass FD_SETSIZE
    try:
        poller.register(conn.fileno(), select.POLLIN)
    except (OSError, psycopg.OperationalError):  # closed
        return True
    return bool(poller.poll(0))
