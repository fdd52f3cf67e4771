"""Derived tables recomputed from the raw events: every rollup tier and every allocation
segment. For bulk loads (the benchmark writes raw rows directly) and for repairs; ingest
keeps them current batch by batch, and a test checks that both ways agree.

Raw events older than the raw retention are gone (api.storage.partitions), so a rebuild
``since`` the first kept month leaves everything derived from older events as it is: the
tiers up to a day are recomputed from their buckets at or after it, the weekly tier from
the daily rows of the weeks from the one holding it, and each object's segments in the
region from its last event before it (api.storage.allocations), the reservation changes
following the difference. Without ``since``, everything is recomputed from scratch.
"""

import sys
from datetime import datetime

import psycopg
from sqlalchemy import DateTime, Text, bindparam, delete, func, literal, or_, select
from sqlalchemy.dialects.postgresql import insert

from api.core.buckets import EPOCH, WEEK, floor_to, origin_of
from api.core.tiers import TIERS
from api.storage import allocations, rollups
from api.storage.db import compile_statement, execute
from api.storage.folding import PENDING_TABLES
from api.storage.schema import RAW_TABLES

_ORG = bindparam("org", type_=Text)  # None: every organization
_SINCE = bindparam("since", type_=DateTime(timezone=True))
# The raw tables in the order ingest writes them (and their queues last), so that a rebuild
# waiting for a batch's lock never holds one that batch goes on to: the two would wait for
# each other. SHARE: readers go on, writers (ingest) wait for the commit. Not expressible in
# SQLAlchemy Core.
_LOCK_RAW_TABLES = f"LOCK TABLE {', '.join(t.name for t in RAW_TABLES)} IN SHARE MODE"
# EXCLUSIVE: readers go on; a folder's take waits, and one under way is waited for, so no
# fold adds to the rollups what the rebuild counts from the raw rows.
_LOCK_QUEUES = f"LOCK TABLE {', '.join(t.name for t in PENDING_TABLES)} IN EXCLUSIVE MODE"


def _of_org(table):
    return [or_(_ORG.is_(None), table.c.org_id == _ORG)]


# The queued events the rebuilt buckets count from the raw rows leave the queue; older ones
# (before ``since``) stay queued: the buckets they fall in are not rebuilt.
_CLEAR_QUEUES = [
    compile_statement(delete(table).where(*_of_org(table), table.c.time >= _SINCE))
    for table in PENDING_TABLES
]


def _weekly_from_daily(family: rollups.Family):
    """The weekly tier's rows from the daily tier's, from the week holding ``since``."""
    daily, weekly = family.tables["1d"], family.tables["7d"]
    week = func.date_bin(literal(WEEK), daily.c.bucket_start, literal(origin_of(WEEK)))
    keys = [daily.c.org_id, week.label("bucket_start"), *(daily.c[d] for d in family.dimensions)]
    sums = [func.sum(daily.c[m]).label(m) for m in family.measures]
    rows = (
        select(*keys, *sums).where(*_of_org(daily), daily.c.bucket_start >= _SINCE).group_by(*keys)
    )
    return insert(weekly).from_select([c.name for c in weekly.columns], rows)


def _rollup_statements(family: rollups.Family, tier: str):
    table = family.tables[tier]
    clear = delete(table).where(*_of_org(table), table.c.bucket_start >= _SINCE)
    if tier == "7d":
        return table.name, compile_statement(clear), compile_statement(_weekly_from_daily(family))
    fill = insert(table).from_select(
        [c.name for c in table.columns],
        family.aggregated(
            TIERS[tier],
            lambda rows, relation: rows.where(*_of_org(relation), relation.c.time >= _SINCE),
        ),
    )
    return table.name, compile_statement(clear), compile_statement(fill)


# Weekly last: it is summed from the daily tier just rebuilt.
_ROLLUP_STATEMENTS = [
    _rollup_statements(family, tier)
    for family in rollups.ALL
    for tier in sorted(family.tables, key=lambda tier: tier == "7d")
]

# A full rebuild clears segments and their reservation changes first: rebuilding the
# segments then only adds, so the changes come out right even if they had drifted.
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


async def rebuild(
    conn: psycopg.AsyncConnection, org: str | None = None, since: datetime | None = None
) -> None:
    """In one transaction: readers see the old figures until the new ones are complete, and
    ingest waits (the raw tables are locked against writes) rather than race it. ``since``:
    the first kept month of raw events (None: all of them are kept)."""
    # Days and shorter tiers from ``since``; weeks from the week that holds it.
    days_from = since or EPOCH
    weeks_from = floor_to(days_from, WEEK)
    async with conn.transaction():
        await conn.execute(_LOCK_RAW_TABLES)
        await conn.execute(_LOCK_QUEUES)
        for clear in _CLEAR_QUEUES:
            await execute(conn, clear, org=org, since=days_from)
        for name, clear, fill in _ROLLUP_STATEMENTS:
            print(f"rebuilding {name}", file=sys.stderr, flush=True)
            bound = weeks_from if name.endswith("_7d") else days_from
            await execute(conn, clear, org=org, since=bound)
            await execute(conn, fill, org=org, since=bound)
        for allocation, clears, objects in _OBJECTS:
            if since is None:
                for clear in clears:
                    await execute(conn, clear, org=org)
            cursor = await execute(conn, objects, org=org)
            found = [tuple(row) for row in await cursor.fetchall()]
            print(f"rebuilding segments of {len(found):,} objects", file=sys.stderr, flush=True)
            regions = [(org_id, object_id, since, None) for org_id, object_id in found]
            await allocations.rebuild_segments(conn, allocation, regions, lock=False)
