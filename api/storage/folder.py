"""The folder as it runs: in every server process (unless USAGE_FOLD_IN_SERVER=0) and as
``usage-api fold``, a loop that folds every queue (api.storage.folding) and measures what is
left, again at once while there was work, else after ``interval`` seconds.

A server whose folding runs apart still measures the queue: ingest refuses a batch (503,
Retry-After) while the queue is past its bound, and /metrics and /readyz report it.
"""

import asyncio
import logging
import time
from dataclasses import dataclass

import psycopg

from api.storage import counters
from api.storage.availability import Database, DatabaseUnavailable
from api.storage.folding import QueueState, fold_all, queue_state

_log = logging.getLogger("api.folder")


@dataclass(slots=True)
class FolderStatus:
    folding: bool  # this process folds (else it only measures)
    queue: QueueState | None = None  # the last measure (None: none yet)
    measured_at: float | None = None  # time.monotonic() of it
    folded_rows: int = 0  # since the process started
    error: str | None = None  # why the last pass failed, if it did


class Folder:
    def __init__(self, database: Database, *, folding: bool, interval: float) -> None:
        self._database = database
        self._interval = interval
        self.status = FolderStatus(folding=folding)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def once(self) -> int:
        """One pass: every queue folded (if this folder folds), then measured. Rows folded."""
        folded = 0
        async with self._database.connection() as conn:
            if self.status.folding:
                folded = (await fold_all(conn)).rows
            queue = await queue_state(conn)
        self.status.queue = queue
        self.status.measured_at = time.monotonic()
        self.status.folded_rows += folded
        counters.PENDING_ROWS.set(queue.rows)
        counters.PENDING_OLDEST_SECONDS.set(queue.oldest_seconds)
        counters.FOLDED_ROWS.inc(folded)
        self.status.error = None
        return folded

    async def _run(self) -> None:
        while True:
            folded = 0
            try:
                folded = await self.once()
            except (psycopg.Error, DatabaseUnavailable) as error:
                if self.status.error is None:
                    _log.warning("the folder's pass failed (%s); trying again", error)
                self.status.error = str(error) or type(error).__name__
            await asyncio.sleep(0 if folded else self._interval)
