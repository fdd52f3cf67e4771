"""Liveness and readiness probes (no key needed)."""

import time

import msgspec
from litestar import Request, get
from litestar.di import NamedDependency
from sqlalchemy import func, literal, select

from api.export.exporter import Exporter
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


class ExporterReport(msgspec.Struct, frozen=True, kw_only=True):
    """The export to object storage (USAGE_EXPORT_URL) as this process knows it."""

    destination: str
    exporting: bool  # this process runs the exporter (else `usage-api export` runs apart)
    last_pass_seconds_ago: float | None  # since its last pass that succeeded (null: none yet)
    error: str | None  # why its last pass failed, if it did
    failures: int  # passes failed in a row (each retried after a backoff)


class Readiness(msgspec.Struct, frozen=True, kw_only=True):
    status: str
    folder: FolderReport
    exporter: ExporterReport | None  # null: export is not configured


@get(
    "/readyz",
    opt=PUBLIC,
    security=PUBLIC_SECURITY,
    tags=["health"],
    summary="The database answers and takes writes; the folder's queue; the exporter",
    description=(
        "200 while the database answers and takes writes. `folder` reports the queue of "
        "events stored but not yet folded into the rollups, as this process last measured "
        "it; a queue longer than `pending_limit` makes POST /events answer 503, not this probe "
        "(every server shares the queue). `exporter` reports the export to object storage "
        "(null when USAGE_EXPORT_URL is not set); a failing export does not fail this probe "
        "(it is retried; the events wait in the database)."
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
        exporter=_exporter_report(request.app.state.exporter),
    )


def _exporter_report(exporter: Exporter | None) -> ExporterReport | None:
    if exporter is None:
        return None
    status = exporter.status
    return ExporterReport(
        destination=status.destination,
        exporting=status.exporting,
        last_pass_seconds_ago=(
            None if status.last_pass_at is None else max(time.time() - status.last_pass_at, 0.0)
        ),
        error=status.error,
        failures=status.failures,
    )


# A standby, or default_transaction_read_only: events could not be stored.
_READ_ONLY = compile_statement(
    select(func.current_setting("transaction_read_only") == literal("on"))
)
