"""receipts keyed by (subject, source, id), whatever the event's time

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 08:00:00.000000

Since 0007 the receipts were partitioned by month of event time, so their key held the time
and an event sent again with another time was stored and counted again. The receipts become
one table keyed by (org_id, source, event_id), the time a column (the retention deletes by
it, through a BRIN index).

Where an event was stored more than once, the first stored is kept: the receipt written by
the oldest transaction (its ``xmin``); receipts that one transaction wrote together (copied
by migration 0007, or moved out of a default partition) rank by event time. The later ones
leave the raw tables, and each organization that lost one has its rollups and segments
rebuilt from the day of the earliest (api.storage.rebuild), all in the migration's
transaction. A name carried only by a removed event stays on its identity: the raw tables
keep no names to recompute it from.
"""

import asyncio
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta

from alembic import op

from api.core.buckets import floor_to
from api.storage import distribution
from api.storage.migrations import AwaitableConnection
from api.storage.rebuild import rebuild

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_RAW = ["workload_events", "volume_events", "llm_calls", "thread_events", "message_events"]
_KEY = "org_id, source, event_id"
_SAME_KEY = "kept.org_id = old.org_id AND kept.source = old.source AND kept.event_id = old.event_id"
_DAY = timedelta(days=1)


def _connection():
    """psycopg's connection under Alembic's, inside its transaction."""
    return op.get_bind().connection.driver_connection


def _rename_receipts(suffix: str) -> None:
    op.execute(f"ALTER TABLE event_receipts RENAME TO event_receipts_{suffix}")
    op.execute(f"ALTER INDEX event_receipts_pkey RENAME TO event_receipts_{suffix}_pkey")


def _place_new_tables(conn) -> None:
    if distribution.citus_present(conn):
        distribution.distribute(conn)


def upgrade() -> None:
    conn = _connection()
    _rename_receipts("0012")
    op.execute(
        "CREATE TABLE event_receipts (org_id text NOT NULL, source text NOT NULL,"
        " event_id text NOT NULL, time timestamp with time zone NOT NULL,"
        f" CONSTRAINT event_receipts_pkey PRIMARY KEY ({_KEY}))"
    )
    op.execute("CREATE INDEX event_receipts_time_idx ON event_receipts USING brin (time)")
    _place_new_tables(conn)
    op.execute(
        f"INSERT INTO event_receipts SELECT DISTINCT ON ({_KEY}) {_KEY}, time"
        f" FROM event_receipts_0012 ORDER BY {_KEY}, age(xmin) DESC, time"
    )
    later = conn.execute(
        f"SELECT {_KEY}, time FROM event_receipts_0012 AS old"
        f" WHERE NOT EXISTS (SELECT FROM event_receipts AS kept WHERE {_SAME_KEY}"
        " AND kept.time = old.time)"
    ).fetchall()
    by_org: dict[str, list[tuple[str, str, datetime]]] = defaultdict(list)
    for org_id, source, event_id, time in later:
        by_org[org_id].append((source, event_id, time))
    for org_id, removals in sorted(by_org.items()):
        removed = _remove(conn, org_id, removals)
        since = floor_to(min(time for _, _, time in removals), _DAY)
        asyncio.run(rebuild(AwaitableConnection(conn), org_id, since))
        counts = ", ".join(f"{count:,} from {table}" for table, count in sorted(removed.items()))
        total = sum(removed.values())
        print(
            f"{org_id}: {total:,} event{'s' * (total != 1)} stored more than once removed"
            f" ({counts}); its figures rebuilt from {since:%Y-%m-%d}",
            flush=True,
        )
    if not by_org:
        print("no event was stored more than once", flush=True)
    op.execute("DROP TABLE event_receipts_0012")


def _remove(conn, org_id: str, removals: list[tuple[str, str, datetime]]) -> Counter[str]:
    """The organization's later copies out of the raw tables; how many left each. One
    organization per statement: on Citus, each runs on its shard alone."""
    sources, event_ids, times = (list(column) for column in zip(*removals, strict=True))
    removed: Counter[str] = Counter()
    for table in _RAW:
        cursor = conn.execute(
            f"DELETE FROM {table} WHERE org_id = %s AND (source, event_id, time) IN"
            " (SELECT * FROM unnest(%s::text[], %s::text[], %s::timestamptz[]))",
            [org_id, sources, event_ids, times],
        )
        if cursor.rowcount:
            removed[table] = cursor.rowcount
    return removed


def downgrade() -> None:
    conn = _connection()
    _rename_receipts("0013")
    op.execute("ALTER INDEX event_receipts_time_idx RENAME TO event_receipts_0013_time_idx")
    op.execute(
        "CREATE TABLE event_receipts (org_id text NOT NULL, source text NOT NULL,"
        " event_id text NOT NULL, time timestamp with time zone NOT NULL,"
        f" CONSTRAINT event_receipts_pkey PRIMARY KEY ({_KEY}, time))"
        " PARTITION BY RANGE (time)"
    )
    # The months the raw tables have, and a default partition, as 0007 made them.
    partitions = conn.execute(
        "SELECT substr(child.relname, length('llm_calls') + 1),"
        " pg_get_expr(child.relpartbound, child.oid)"
        " FROM pg_inherits JOIN pg_class child ON child.oid = pg_inherits.inhrelid"
        " WHERE pg_inherits.inhparent = 'llm_calls'::regclass"
    ).fetchall()
    for suffix, bound in partitions:
        op.execute(f"CREATE TABLE event_receipts{suffix} PARTITION OF event_receipts {bound}")
    _place_new_tables(conn)
    op.execute(f"INSERT INTO event_receipts SELECT {_KEY}, time FROM event_receipts_0013")
    op.execute("DROP TABLE event_receipts_0013")
