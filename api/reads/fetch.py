"""Running a section's statements: all in one snapshot and one round trip."""

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg.rows import namedtuple_row
from sqlalchemy import exists, select

from api.reads.query import ORG
from api.storage.db import Compiled, compile_statement
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
    conn: psycopg.AsyncConnection, statements: Sequence[Compiled], params: dict[str, Any]
) -> list[list[Any]]:
    """Every statement's rows (as named tuples), all from one snapshot, sent in one pipeline
    so a section costs one round trip; for one organization, with the check that it exists."""
    one_org = params["org"] is not None
    # The transaction's BEGIN, its isolation and COMMIT go in the pipeline too.
    async with conn.pipeline(), conn.transaction():
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        cursors = []
        for statement in [_ORG_EXISTS, *statements] if one_org else statements:
            cursor = conn.cursor(row_factory=namedtuple_row)
            await cursor.execute(statement.sql, statement.params(params))
            cursors.append(cursor)
    results = [await cursor.fetchall() for cursor in cursors]
    if not one_org:
        return results
    if not results[0][0][0]:
        raise UnknownOrg(params["org"])
    return results[1:]
