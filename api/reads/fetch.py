"""Running a section's statements: all in one snapshot and one round trip."""

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.rows import namedtuple_row
from sqlalchemy import exists, select

from api.reads.query import ORG
from api.storage.db import PLANNED_WITH_VALUES, Compiled, compile_statement
from api.storage.schema import orgs


def split_top(rows: Sequence[Any]) -> tuple[list[Any], Any | None]:
    """Rows of ``top_n``: the ranked ones, and the row of the others (or None)."""
    ranked = [row for row in rows if row.position is not None]
    others = next((row for row in rows if row.position is None), None)
    return ranked, others


class UnknownOrg(LookupError):
    """The query names an organization that has no events and no keys."""


_ORG_EXISTS = compile_statement(select(exists().where(orgs.c.org_id == ORG)))
_BEGIN_READ_ONLY = b"BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
_COMMIT, _ROLLBACK = b"COMMIT", b"ROLLBACK"


async def fetch_all(
    conn: psycopg.AsyncConnection,
    runs: Sequence[tuple[Compiled, dict[str, Any]]],
    *,
    planned_with_values: bool = False,
) -> list[list[Any]]:
    """The rows (as named tuples) of every statement with its parameters, all from one
    snapshot, sent in one pipeline so a section costs one round trip; for one organization,
    with the check that it exists. ``planned_with_values``: planned with the parameters'
    values, not by the connection's generic plans (api.storage.db.plan_for_engine)."""
    org = runs[0][1]["org"]
    if org is not None:
        runs = [(_ORG_EXISTS, {"org": org}), *runs]
    cursors = []
    try:
        # The transaction is begun and committed by statements in the pipeline, not by
        # psycopg's transaction(), which syncs the pipeline as it enters and leaves it: three
        # waits for PostgreSQL per read instead of this one, at the pipeline's end.
        async with conn.pipeline():
            await conn.execute(_BEGIN_READ_ONLY)
            if planned_with_values:
                await conn.execute(PLANNED_WITH_VALUES)
            for statement, params in runs:
                cursor = conn.cursor(row_factory=namedtuple_row)
                await cursor.execute(statement.sql, statement.params(params))
                cursors.append(cursor)
            await conn.execute(_COMMIT)
    except psycopg.Error:
        # A statement failed: the transaction it left aborted ends here, not in the pool.
        if conn.info.transaction_status == TransactionStatus.INERROR:
            await conn.execute(_ROLLBACK)
        raise
    results = [await cursor.fetchall() for cursor in cursors]
    if org is None:
        return results
    if not results[0][0][0]:
        raise UnknownOrg(org)
    return results[1:]
