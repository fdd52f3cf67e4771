"""Derived tables recomputed from the raw events: every rollup tier and every allocation
segment. For bulk loads (the benchmark writes raw rows directly) and for repairs; ingest
keeps them current batch by batch, and a test checks that both ways agree."""

import sys

import psycopg
from sqlalchemy import Text, bindparam, delete, or_, select
from sqlalchemy.dialects.postgresql import insert

from api.core.tiers import TIERS
from api.storage import allocations, rollups
from api.storage.db import compile_statement, execute
from api.storage.schema import (
    llm_calls,
    message_events,
    thread_events,
    volume_events,
    workload_events,
)

_ORG = bindparam("org", type_=Text)  # None: every organization
_RAW_TABLES = [llm_calls, workload_events, volume_events, thread_events, message_events]
# SHARE: readers go on, writers (ingest) wait for the commit. Not expressible in SQLAlchemy Core.
_LOCK_RAW_TABLES = f"LOCK TABLE {', '.join(t.name for t in _RAW_TABLES)} IN SHARE MODE"


def _of_org(table):
    return [or_(_ORG.is_(None), table.c.org_id == _ORG)]


_ROLLUP_STATEMENTS = [
    (
        table.name,
        compile_statement(delete(table).where(*_of_org(table))),
        compile_statement(
            insert(table).from_select(
                [c.name for c in table.columns],
                family.aggregated(
                    TIERS[tier], lambda rows, relation: rows.where(*_of_org(relation))
                ),
            )
        ),
    )
    for family in rollups.ALL
    for tier, table in family.tables.items()
]

# Segments and their reservation changes are cleared first: rebuilding the segments then
# only adds, so the changes come out right even if they had drifted.
_OBJECTS = [
    (
        allocation,
        [
            compile_statement(delete(table).where(*_of_org(table)))
            for table in allocation.reservations.tables
        ],
        compile_statement(
            select(allocation.events.c.org_id, allocation.events.c[allocation.object_column])
            .distinct()
            .where(*_of_org(allocation.events))
        ),
    )
    for allocation in allocations.ALL
]


async def rebuild(conn: psycopg.AsyncConnection, org: str | None = None) -> None:
    """In one transaction: readers see the old figures until the new ones are complete, and
    ingest waits (the raw tables are locked against writes) rather than race it."""
    async with conn.transaction():
        await conn.execute(_LOCK_RAW_TABLES)
        for name, clear, fill in _ROLLUP_STATEMENTS:
            print(f"rebuilding {name}", file=sys.stderr, flush=True)
            await execute(conn, clear, org=org)
            await execute(conn, fill, org=org)
        for allocation, clears, objects in _OBJECTS:
            for clear in clears:
                await execute(conn, clear, org=org)
            cursor = await execute(conn, objects, org=org)
            found = {tuple(row) for row in await cursor.fetchall()}
            print(f"rebuilding segments of {len(found):,} objects", file=sys.stderr, flush=True)
            every_segment = [(org_id, object_id, None, None) for org_id, object_id in found]
            await allocations.rebuild_segments(conn, allocation, every_segment, lock=False)
