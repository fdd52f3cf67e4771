"""The thresholds' watcher as it runs: in every server process (unless
USAGE_WATCH_IN_SERVER=0) and as ``usage-api watch``, a loop that evaluates the thresholds
(api.alerts.evaluation) and delivers the crossings due (api.alerts.delivery) every
``interval`` seconds.

One watcher at a time across processes: a pass runs under a session advisory lock it tries
on its connection, and a process whose neighbour holds it skips the pass. The lock goes with
its session: a watcher killed mid-pass lets go when its connection closes.
"""

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
from prometheus_client import Counter, Gauge
from sqlalchemy import func, literal, select

from api.alerts.delivery import Deliveries, deliver_due
from api.alerts.evaluation import Evaluation, evaluate
from api.settings import Settings
from api.storage.availability import Database, DatabaseUnavailable
from api.storage.db import compile_statement, execute

_log = logging.getLogger("api.watcher")
CROSSINGS = Counter("usage_threshold_crossings_total", "Threshold crossings this process found")
ATTEMPTS = Counter(
    "usage_webhook_attempts_total", "Webhook attempts this process made, by outcome", ["outcome"]
)
PASS_SECONDS = Gauge("usage_watch_pass_seconds", "How long this process's last watcher pass took")
_LOCK = (7203, 0)  # the folder's are 7201 and 7202
_TRY_LOCK = compile_statement(select(func.pg_try_advisory_lock(*map(literal, _LOCK))))
_UNLOCK = compile_statement(select(func.pg_advisory_unlock(*map(literal, _LOCK))))


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Watched:
    evaluation: Evaluation
    deliveries: Deliveries


@asynccontextmanager
async def sole_watcher(conn: psycopg.AsyncConnection) -> AsyncIterator[bool]:
    """Whether this connection holds the watchers' lock, for the block's duration."""
    (locked,) = await (await execute(conn, _TRY_LOCK)).fetchone()
    if not locked:
        yield False
        return
    try:
        yield True
        await execute(conn, _UNLOCK)
    except BaseException:
        # A session still holding the lock must not go back to the pool: closed, it lets go.
        await conn.close()
        raise


async def watch_once(
    conn: psycopg.AsyncConnection,
    *,
    allowed_hosts: frozenset[str],
    public_url: str,
    clock: Callable[[], datetime] = utc_now,
) -> Watched | None:
    """One pass: the thresholds evaluated, then the crossings due delivered; None when
    another watcher holds the lock."""
    async with sole_watcher(conn) as sole:
        if not sole:
            return None
        evaluation = await evaluate(conn, clock())
        deliveries = await deliver_due(
            conn, clock, allowed_hosts=allowed_hosts, public_url=public_url
        )
        return Watched(evaluation, deliveries)


class Watcher:
    def __init__(
        self,
        database: Database,
        *,
        interval: float,
        allowed_hosts: frozenset[str],
        public_url: str,
    ) -> None:
        self._database = database
        self._interval = interval
        self._allowed_hosts = allowed_hosts
        self._public_url = public_url
        self._task: asyncio.Task[None] | None = None
        self.error: str | None = None  # why the last pass failed, if it did

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def once(self) -> Watched | None:
        started = time.perf_counter()
        async with self._database.connection() as conn:
            watched = await watch_once(
                conn, allowed_hosts=self._allowed_hosts, public_url=self._public_url
            )
        self.error = None
        if watched is not None:
            PASS_SECONDS.set(time.perf_counter() - started)
            CROSSINGS.inc(len(watched.evaluation.crossings))
            ATTEMPTS.labels(outcome="delivered").inc(watched.deliveries.delivered)
            failed = watched.deliveries.attempted - watched.deliveries.delivered
            ATTEMPTS.labels(outcome="failed").inc(failed)
        return watched

    async def _run(self) -> None:
        while True:
            try:
                await self.once()
            except (psycopg.Error, DatabaseUnavailable) as error:
                if self.error is None:
                    _log.warning("the thresholds' watcher failed (%s); trying again", error)
                self.error = str(error) or type(error).__name__
            except Exception as error:
                # Whatever went wrong, the next pass tries again: a loop that ended here
                # would watch nothing more until the process restarts.
                _log.exception("the thresholds' watcher failed; trying again")
                self.error = str(error) or type(error).__name__
            await asyncio.sleep(self._interval)


def watcher_of(database: Database, settings: Settings) -> Watcher:
    return Watcher(
        database,
        interval=settings.watch_interval,
        allowed_hosts=settings.webhook_allow_hosts,
        public_url=settings.public_url,
    )
