"""Running a section's statements: all in one snapshot and one round trip."""

from collections.abc import Sequence
from typing import Any

import psycopg
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
    # The transaction's BEGIN, its isolation and COMMIT go in the pipeline too.
    async with conn.pipeline(), conn.transaction():
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        if planned_with_values:
            await conn.execute(PLANNED_WITH_VALUES)
        cursors = []
        for statement, params in runs:
            cursor = conn.cursor(row_factory=namedtuple_row)
            await cursor.execute(statement.sql, statement.params(params))
            cursors.append(cursor)
    results = [await cursor.fetchall() for cursor in cursors]
    if org is None:
        return results
    if not results[0][0][0]:
        raise UnknownOrg(org)
    return results[1:]
