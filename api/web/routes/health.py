"""Liveness and readiness probes (no key needed)."""

import time

import msgspec
from litestar import Request, get
from litestar.di import NamedDependency
from sqlalchemy import func, literal, select

from api.storage.availability import Database, DatabaseReadOnly
from api.storage.db import compile_statement, execute
from api.web.auth import PUBLIC
from api.web.openapi import PUBLIC_SECURITY
from api.web.problems import problem_responses


class Health(msgspec.Struct, frozen=True, kw_only=True):
    status: str


@get(
    "/healthz",
    opt=PUBLIC,
    security=PUBLIC_SECURITY,
    tags=["health"],
    summary="The process is running",
)
async def healthz() -> Health:
    return Health(status="ok")


class FolderReport(msgspec.Struct, frozen=True, kw_only=True):
    """The write path's folder as this process last measured it."""

    folding: bool  # this process folds the queue (else `usage-api fold` runs apart)
    pending_rows: int | None  # events waiting to be folded (null: not measured yet)
    oldest_pending_seconds: float | None  # how long the oldest has waited
    measured_seconds_ago: float | None
    pending_limit: int  # while more than it wait, POST /events answers 503
    error: str | None  # why the last pass failed, if it did


class Readiness(msgspec.Struct, frozen=True, kw_only=True):
    status: str
    folder: FolderReport


@get(
    "/readyz",
    opt=PUBLIC,
    security=PUBLIC_SECURITY,
    tags=["health"],
    summary="The database answers and takes writes; the folder's queue",
    description=(
        "200 while the database answers and takes writes. `folder` reports the queue of "
        "events stored but not yet folded into the rollups, as this process last measured "
        "it; a queue longer than `pending_limit` makes POST /events answer 503, not this probe "
        "(every server shares the queue)."
    ),
    responses=problem_responses(503),
)
async def readyz(request: Request, database: NamedDependency[Database]) -> Readiness:
    async with database.connection() as conn:
        cursor = await execute(conn, _READ_ONLY)
        (read_only,) = await cursor.fetchone()
    if read_only:
        raise DatabaseReadOnly
    status = request.app.state.folder.status
    queue = status.queue
    return Readiness(
        status="ready",
        folder=FolderReport(
            folding=status.folding,
            pending_rows=None if queue is None else queue.rows,
            oldest_pending_seconds=None if queue is None else queue.oldest_seconds,
            measured_seconds_ago=(
                None if status.measured_at is None else time.monotonic() - status.measured_at
            ),
            pending_limit=request.app.state.pending_limit,
            error=status.error,
        ),
    )


# A standby, or default_transaction_read_only: events could not be stored.
_READ_ONLY = compile_statement(
    select(func.current_setting("transaction_read_only") == literal("on"))
)
