"""Liveness and readiness probes (no key needed)."""

import msgspec
from litestar import get
from litestar.di import NamedDependency
from psycopg_pool import AsyncConnectionPool

from api.auth import PUBLIC
from api.problems import problem_responses


class Health(msgspec.Struct, frozen=True, kw_only=True):
    status: str


@get("/healthz", opt=PUBLIC, tags=["health"], summary="The process is running")
async def healthz() -> Health:
    return Health(status="ok")


@get(
    "/readyz",
    opt=PUBLIC,
    tags=["health"],
    summary="The database answers",
    responses=problem_responses(503),
)
async def readyz(pool: NamedDependency[AsyncConnectionPool]) -> Health:
    async with pool.connection(timeout=2.0) as conn:
        await conn.execute("SELECT 1")
    return Health(status="ready")
