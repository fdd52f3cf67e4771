"""Running SQLAlchemy Core statements through psycopg 3.

Statements are built with SQLAlchemy Core and compiled once for PostgreSQL's psycopg
dialect; psycopg runs the SQL text with named parameters. That keeps SQLAlchemy's query
building without its engine between the service and the connection pool.
"""

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import psycopg
from psycopg import _queries
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import bindparam, func
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql.expression import Executable, TableValuedAlias
from sqlalchemy.types import Text, TypeEngine


class _Text(Text):
    render_bind_cast = True


class _Dialect(postgresql.psycopg.dialect):
    """psycopg's dialect, casting text parameters to text rather than varchar: Citus routes
    a statement by the org_id it compares or writes only when that is a plain text parameter
    (``$1::varchar``, converted back to text, it cannot evaluate)."""

    colspecs: ClassVar = {**postgresql.psycopg.dialect.colspecs, Text: _Text}


_DIALECT = _Dialect()

# Custom plans always: psycopg prepares statements after a few runs and PostgreSQL may then
# choose a generic plan several times slower. JIT costs more than it saves on these queries.
_CONNECTION_OPTIONS = "-c timezone=UTC -c jit=off -c plan_cache_mode=force_custom_plan"
# The server's requests read thousands of rows, not millions: starting parallel workers
# costs them more (about 10 ms) than it saves, and concurrent requests use the cores anyway.
_SERVER_OPTIONS = f"{_CONNECTION_OPTIONS} -c max_parallel_workers_per_gather=0"
# The exporter's reads sort a day of events and group an organization's day of figures: in
# memory, not in temporary files (PostgreSQL's default is 4 MB).
EXPORT_OPTIONS = f"{_CONNECTION_OPTIONS} -c work_mem=64MB"
CITUS_PRESENT = "SELECT 1 FROM pg_extension WHERE extname = 'citus'"


@dataclass(frozen=True, slots=True)
class Compiled:
    sql: bytes  # encoded once: psycopg would encode (and hash) each run's copy
    defaults: Mapping[str, Any]

    def params(self, values: Mapping[str, Any]) -> dict[str, Any]:
        return {**self.defaults, **values}


# psycopg remembers how it rewrote a statement's named placeholders for statements of up to
# 4 KB and 50 parameters only, to keep generated one-off SQL out of its cache (128 entries).
# The service's statements are a fixed few dozen of 5-30 KB with up to a few hundred
# parameters: rewriting the LLM section's three took 1.4 ms of every request.
_queries.MAX_CACHED_STATEMENT_LENGTH = 1 << 20
_queries.MAX_CACHED_STATEMENT_PARAMS = 1 << 12

# Every parameter goes in binary (``%(name)b``; the SQL casts each one to its type): PostgreSQL
# parses a text array of 289 timestamps in about 3 ms, its binary form in under 0.5 ms, and
# a read sends its buckets' bounds as such arrays.
_TEXT_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def compile_statement(statement: Executable) -> Compiled:
    compiled = statement.compile(dialect=_DIALECT)
    sql = _TEXT_PLACEHOLDER.sub(r"%(\1)b", str(compiled))
    return Compiled(sql=sql.encode(), defaults=dict(compiled.params))


async def execute(
    conn: psycopg.AsyncConnection, statement: Compiled, **values: Any
) -> psycopg.AsyncCursor:
    return await conn.execute(statement.sql, statement.params(values))


def execute_sync(conn: psycopg.Connection, statement: Compiled, **values: Any) -> psycopg.Cursor:
    return conn.execute(statement.sql, statement.params(values))


def connect_kwargs(options: str = _CONNECTION_OPTIONS) -> dict[str, Any]:
    return {"autocommit": True, "prepare_threshold": None, "options": options}


def connect(database_url: str) -> psycopg.Connection:
    return psycopg.connect(database_url, **connect_kwargs())


def create_pool(
    database_url: str,
    size: int,
    *,
    check: Callable[[psycopg.AsyncConnection], Awaitable[None]],
) -> AsyncConnectionPool:
    """The server's pool; ``check`` runs on every connection as it is handed out, so after
    PostgreSQL restarts requests get fresh connections instead of the dead ones left in it."""
    return AsyncConnectionPool(
        database_url,
        min_size=1,
        max_size=size,
        kwargs=connect_kwargs(_SERVER_OPTIONS),
        open=False,
        check=check,
    )


# For a transaction whose statements must be planned with their values, whatever the
# connection's mode (plan_for_engine): where the values decide the plan.
PLANNED_WITH_VALUES = "SET LOCAL plan_cache_mode = force_custom_plan"


async def plan_for_engine(conn: psycopg.AsyncConnection) -> None:
    """Prepares each statement on its first use and plans it once (a generic plan), unless
    the database is Citus: a check of a server connection before each use, as an engine can
    become Citus while the server runs (`usage-api distribute`).

    The server runs the same few dozen statements all day, and planning a read's statements
    took 1.1-1.6 ms each, more than running them for a small organization. Their plans do
    not depend on the values: index range scans driven by the spans' arrays, partitions
    pruned at run time. Citus cannot route a generic plan (the organization is a parameter
    there), so there each run is planned with its values."""
    cursor = await conn.execute(CITUS_PRESENT)
    citus = await cursor.fetchone() is not None
    planned_once = conn.prepare_threshold is not None
    if citus == planned_once:
        mode = "force_custom_plan" if citus else "force_generic_plan"
        await conn.execute(f"SET plan_cache_mode = {mode}")
        conn.prepare_threshold = None if citus else 0


def sqlalchemy_url(database_url: str) -> str:
    """The same database for SQLAlchemy (Alembic), through the psycopg 3 driver."""
    scheme, _, rest = database_url.partition("://")
    if scheme not in ("postgres", "postgresql"):
        raise ValueError(f"DATABASE_URL must be a postgresql:// URL, not {scheme}://")
    return f"postgresql+psycopg://{rest}"


def unnest_rows(columns: list[tuple[str, TypeEngine]], prefix: str = "") -> TableValuedAlias:
    """A FROM clause over parallel array parameters, one per column, named after them (with
    ``prefix``, where one statement takes several batches).

    Sending a batch as one array per column keeps a write to one statement and one round
    trip whatever the batch size.
    """
    arrays = [bindparam(prefix + name, type_=ARRAY(type_)) for name, type_ in columns]
    return func.unnest(*arrays).table_valued(*(name for name, _ in columns)).render_derived()


def as_arrays(rows: Sequence[Sequence[Any]], names: Sequence[str]) -> dict[str, list[Any]]:
    """Rows (tuples in the order of ``names``) as one list per column, for ``unnest_rows``."""
    columns: list[list[Any]] = [[] for _ in names]
    for row in rows:
        for column, value in zip(columns, row, strict=True):
            column.append(value)
    return dict(zip(names, columns, strict=True))
