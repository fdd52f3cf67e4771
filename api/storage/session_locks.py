"""Session advisory locks: one pass at a time across processes (the watcher's evaluator and
deliverer, the exporter). A lock is tried on the pass's own connection; a process whose
neighbour holds it skips the pass. The lock goes with its session: a process killed
mid-pass lets go when its connection closes.

The first keys in use: 7201 and 7202 the folder's (transaction locks, api.storage.folding),
7203 the watcher's, 7204 the exporter's.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import psycopg
from sqlalchemy import func, literal, select

from api.storage.db import Compiled, compile_statement, execute


@dataclass(frozen=True, slots=True)
class Lock:
    take: Compiled
    release: Compiled


def session_lock(first_key: int, key: int) -> Lock:
    keys = (literal(first_key), literal(key))
    return Lock(
        compile_statement(select(func.pg_try_advisory_lock(*keys))),
        compile_statement(select(func.pg_advisory_unlock(*keys))),
    )


@asynccontextmanager
async def holding(conn: psycopg.AsyncConnection, lock: Lock) -> AsyncIterator[bool]:
    """Whether this connection holds ``lock``, for the block's duration."""
    (locked,) = await (await execute(conn, lock.take)).fetchone()
    if not locked:
        yield False
        return
    try:
        yield True
        await execute(conn, lock.release)
    except BaseException:
        # A session still holding the lock must not go back to the pool: closed, it lets go.
        await conn.close()
        raise
