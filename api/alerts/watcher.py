"""The thresholds' watcher as it runs: in every server process (unless
USAGE_WATCH_IN_SERVER=0) and as ``usage-api watch``, two loops every ``interval`` seconds:
one evaluates the thresholds (api.alerts.evaluation), the other delivers the crossings due
(api.alerts.delivery). Apart, so that receivers slow to answer delay no crossing's detection.
A delivery pass goes on while crossings are due or attempts under way, and the crossings this
process's evaluator finds wake it (or start its next pass) at once; a neighbour's are read
at its next look, within ``interval``.

One evaluator and one deliverer at a time across processes: each pass runs under a session
advisory lock of its own (api.storage.session_locks).
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
from prometheus_client import Counter, Gauge

from api.alerts.delivery import DEFAULT_BOUNDS, Bounds, Deliveries, deliver_due
from api.alerts.evaluation import Evaluation, evaluate
from api.alerts.sender import Sent
from api.settings import Settings
from api.storage.availability import Database, DatabaseUnavailable
from api.storage.session_locks import holding, session_lock

_log = logging.getLogger("api.watcher")
CROSSINGS = Counter("usage_threshold_crossings_total", "Threshold crossings this process found")
ATTEMPTS = Counter(
    "usage_webhook_attempts_total", "Webhook attempts this process made, by outcome", ["outcome"]
)
PASS_SECONDS = Gauge(
    "usage_watch_pass_seconds", "How long this process's last evaluation pass took"
)


EVALUATING, DELIVERING = session_lock(7203, 0), session_lock(7203, 1)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Watched:
    evaluation: Evaluation
    deliveries: Deliveries


async def evaluate_once(
    conn: psycopg.AsyncConnection, clock: Callable[[], datetime] = utc_now
) -> Evaluation | None:
    """One evaluation pass; None when another process is evaluating."""
    async with holding(conn, EVALUATING) as sole:
        return await evaluate(conn, clock()) if sole else None


async def deliver_once(
    conn: psycopg.AsyncConnection,
    *,
    allowed_hosts: frozenset[str],
    public_url: str,
    clock: Callable[[], datetime] = utc_now,
    bounds: Bounds = DEFAULT_BOUNDS,
    look_every: float = 5.0,
    woken: asyncio.Event | None = None,
    counted: Callable[[Sent], object] = lambda _sent: None,
) -> Deliveries | None:
    """The crossings due, delivered (api.alerts.delivery.deliver_due); None when another
    process is delivering."""
    async with holding(conn, DELIVERING) as sole:
        if not sole:
            return None
        return await deliver_due(
            conn,
            clock,
            allowed_hosts=allowed_hosts,
            public_url=public_url,
            bounds=bounds,
            look_every=look_every,
            woken=woken,
            counted=counted,
        )


async def watch_once(
    conn: psycopg.AsyncConnection,
    *,
    allowed_hosts: frozenset[str],
    public_url: str,
    clock: Callable[[], datetime] = utc_now,
) -> Watched | None:
    """An evaluation pass, then the deliveries: what ``usage-api watch --once`` and the
    tests run; None when another process holds either lock."""
    evaluation = await evaluate_once(conn, clock)
    if evaluation is None:
        return None
    deliveries = await deliver_once(
        conn, allowed_hosts=allowed_hosts, public_url=public_url, clock=clock
    )
    return None if deliveries is None else Watched(evaluation, deliveries)


class Watcher:
    def __init__(
        self,
        database: Database,
        *,
        interval: float,
        allowed_hosts: frozenset[str],
        public_url: str,
        bounds: Bounds = DEFAULT_BOUNDS,
    ) -> None:
        self._database = database
        self._interval = interval
        self._allowed_hosts = allowed_hosts
        self._public_url = public_url
        self._bounds = bounds
        self._tasks: list[asyncio.Task[None]] = []
        # Set when this process's evaluator records crossings: its deliverer reads them at
        # once, not at its next look.
        self._found = asyncio.Event()
        self.error: str | None = None  # why the last pass failed, if it did
        # Since the process started: crossings found, webhook attempts, and delivered.
        self.totals = Deliveries()
        self.crossings = 0

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._every_interval(self.evaluate)),
            loop.create_task(self._every_interval(self.deliver, woken=self._found)),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def evaluate(self) -> Evaluation | None:
        started = time.perf_counter()
        async with self._database.connection() as conn:
            evaluation = await evaluate_once(conn)
        if evaluation is not None:
            PASS_SECONDS.set(time.perf_counter() - started)
            CROSSINGS.inc(len(evaluation.crossings))
            self.crossings += len(evaluation.crossings)
            if evaluation.crossings:
                self._found.set()
        return evaluation

    async def deliver(self) -> Deliveries | None:
        async with self._database.connection() as conn:
            return await deliver_once(
                conn,
                allowed_hosts=self._allowed_hosts,
                public_url=self._public_url,
                bounds=self._bounds,
                look_every=self._interval,
                woken=self._found,
                counted=self._count,
            )

    def _count(self, sent: Sent) -> None:
        # As each attempt is recorded: a pass may go on for as long as receivers hang.
        ATTEMPTS.labels(outcome="delivered" if sent.delivered else "failed").inc()
        self.totals.attempted += 1
        self.totals.delivered += sent.delivered

    async def once(self) -> Watched | None:
        evaluation = await self.evaluate()
        deliveries = await self.deliver()
        if evaluation is None or deliveries is None:
            return None
        return Watched(evaluation, deliveries)

    async def _every_interval(
        self, work: Callable[[], Awaitable[object]], woken: asyncio.Event | None = None
    ) -> None:
        """``work`` every ``interval`` seconds, and at once when ``woken`` is set."""
        while True:
            try:
                await work()
                self.error = None
            except (psycopg.Error, DatabaseUnavailable) as error:
                if self.error is None:
                    _log.warning("the thresholds' watcher failed (%s); trying again", error)
                self.error = str(error) or type(error).__name__
            except Exception as error:
                # Whatever went wrong, the next pass tries again: a loop that ended here
                # would watch nothing more until the process restarts.
                _log.exception("the thresholds' watcher failed; trying again")
                self.error = str(error) or type(error).__name__
            if woken is None:
                await asyncio.sleep(self._interval)
                continue
            with suppress(TimeoutError):
                await asyncio.wait_for(woken.wait(), self._interval)
            # Heard: a pass skipped for a neighbour's lock must not wake again and again.
            woken.clear()


def watcher_of(database: Database, settings: Settings) -> Watcher:
    return Watcher(
        database,
        interval=settings.watch_interval,
        allowed_hosts=settings.webhook_allow_hosts,
        public_url=settings.public_url,
        bounds=Bounds(
            in_all=settings.webhook_concurrency,
            per_org=settings.webhook_org_concurrency,
            per_host=settings.webhook_host_concurrency,
        ),
    )
