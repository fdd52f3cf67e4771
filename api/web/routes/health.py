"""Liveness and readiness probes (no key needed)."""

import msgspec
from litestar import get
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


@get(
    "/readyz",
    opt=PUBLIC,
    security=PUBLIC_SECURITY,
    tags=["health"],
    summary="The database answers and takes writes",
    responses=problem_responses(503),
)
async def readyz(database: NamedDependency[Database]) -> Health:
    async with database.connection() as conn:
        cursor = await execute(conn, _READ_ONLY)
        (read_only,) = await cursor.fetchone()
    if read_only:
        raise DatabaseReadOnly
    return Health(status="ready")


# A standby, or default_transaction_read_only: events could not be stored.
_READ_ONLY = compile_statement(
    select(func.current_setting("transaction_read_only") == literal("on"))
)
