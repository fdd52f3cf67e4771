"""The server's ingest transactions: one at a time, each taking every batch that arrived
while the one before ran.

Every batch of an organization adds to the same few rollup rows (this hour, today, this
week, for the same identities), so concurrent transactions of one organization queue on
their locks and a batch's upserts cost the same whether its rows are new or not. Batches
that wait anyway are better written together: the rollup rows of several batches are
mostly the same rows, so one transaction over four batches upserts little more than one
over a single batch. Each request still gets its answer only once its events are committed,
with its own counts (api.storage.ingest.ingest_batches).
"""

import asyncio
from collections.abc import Sequence

from api.core.events import Event
from api.storage.availability import Database
from api.storage.ingest import IngestResult, ingest_batches

MAX_EVENTS = 10_000  # per transaction, unless one batch alone is larger


class Writer:
    def __init__(self, database: Database) -> None:
        self._database = database
        self._waiting: list[tuple[Sequence[Event], asyncio.Future[IngestResult]]] = []
        self._writing: asyncio.Task[None] | None = None

    async def ingest(self, events: Sequence[Event]) -> IngestResult:
        """``events`` stored exactly once, in the next transaction."""
        answer: asyncio.Future[IngestResult] = asyncio.get_running_loop().create_future()
        self._waiting.append((events, answer))
        if self._writing is None:
            self._writing = asyncio.get_running_loop().create_task(self._write_waiting())
        # A request given up (its client gone) leaves its batch to be written all the same.
        return await asyncio.shield(answer)

    async def _write_waiting(self) -> None:
        try:
            while self._waiting:
                taken = self._take()
                try:
                    async with self._database.connection() as conn:
                        results = await ingest_batches(conn, [events for events, _ in taken])
                except Exception as error:  # each request answers it as it would alone
                    for _, answer in taken:
                        answer.set_exception(error)
                else:
                    for (_, answer), result in zip(taken, results, strict=True):
                        answer.set_result(result)
        finally:
            self._writing = None

    def _take(self) -> list[tuple[Sequence[Event], asyncio.Future[IngestResult]]]:
        """The waiting batches, oldest first, up to ``MAX_EVENTS`` events (one at least)."""
        count, total = 0, 0
        for events, _ in self._waiting:
            if count and total + len(events) > MAX_EVENTS:
                break
            count, total = count + 1, total + len(events)
        taken, self._waiting = self._waiting[:count], self._waiting[count:]
        return taken
