"""The write path's queue watched while a bench runs: how many events wait to be folded into
the rollups and how long the oldest has waited, sampled twice a second (the service's own
measure, api.storage.folding.queue_state)."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg

from api.storage.db import connect_kwargs
from api.storage.folding import QueueState, queue_state
from bench.stats import percentiles

EVERY_SECONDS = 0.5


@asynccontextmanager
async def watched(database_url: str) -> AsyncIterator[list[QueueState]]:
    """The samples taken while the block runs (appended as they come)."""
    samples: list[QueueState] = []

    async def sample() -> None:
        async with await psycopg.AsyncConnection.connect(database_url, **connect_kwargs()) as conn:
            while True:
                samples.append(await queue_state(conn))
                await asyncio.sleep(EVERY_SECONDS)

    task = asyncio.get_running_loop().create_task(sample())
    try:
        yield samples
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def drained(database_url: str) -> float:
    """Seconds until the queue is empty (the folders caught up), from now; at most 120."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with await psycopg.AsyncConnection.connect(database_url, **connect_kwargs()) as conn:
        for _ in range(120 * 20):
            if not (await queue_state(conn)).rows:
                break
            await asyncio.sleep(0.05)
    return loop.time() - started


def summary(samples: list[QueueState]) -> dict:
    """The queue over the samples: its largest length, and the oldest wait's p99 and max."""
    if not samples:
        return {"max_rows": 0, "oldest_p99_s": 0.0, "oldest_max_s": 0.0}
    ages = [sample.oldest_seconds * 1000 for sample in samples]
    return {
        "max_rows": max(sample.rows for sample in samples),
        "oldest_p99_s": percentiles(ages)["p99_ms"] / 1000 if len(ages) > 1 else ages[0] / 1000,
        "oldest_max_s": max(ages) / 1000,
    }
