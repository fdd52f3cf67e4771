"""The schema on Citus: every org-keyed table distributed on ``org_id``, all co-located with
``orgs`` (an organization's rows of every table on one shard, so its statements run on one
node), and the tables of no organization reference tables, copied to every node: API keys (a
request finds its key by the key's hash, before it knows an organization; ingest and admin
keys have none of their own) and the exporter's bookkeeping.

Migration 0008 distributes the tables of a new database where the ``citus`` extension exists;
``usage-api distribute`` converts a populated one, a table at a time (each in its own
transaction, so an interrupted run resumes at the table it stopped in). Partitioned tables are
distributed with their partitions; partitions created later follow their table.
"""

from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from psycopg import sql
from sqlalchemy import Table

from api.storage.db import CITUS_PRESENT
from api.storage.schema import NOT_ORG_TABLES, metadata, orgs

COLOCATION_ANCHOR = orgs.name


@dataclass(frozen=True, slots=True)
class Placement:
    table: str
    distributed: bool  # on org_id; else a reference table

    def statement(self) -> sql.Composed:
        name = sql.Literal(self.table)
        if not self.distributed:
            return sql.SQL("SELECT create_reference_table({})").format(name)
        if self.table == COLOCATION_ANCHOR:
            return sql.SQL("SELECT create_distributed_table({}, 'org_id')").format(name)
        return sql.SQL("SELECT create_distributed_table({}, 'org_id', colocate_with => {})").format(
            name, sql.Literal(COLOCATION_ANCHOR)
        )


def _placement(table: Table) -> Placement:
    return Placement(table.name, distributed=table not in NOT_ORG_TABLES)


# orgs first: every other distributed table is co-located with it.
PLACEMENTS = sorted(
    (_placement(table) for table in metadata.sorted_tables),
    key=lambda placement: (placement.table != COLOCATION_ANCHOR, placement.table),
)


def citus_present(conn: psycopg.Connection) -> bool:
    """Whether the database has the ``citus`` extension (its migrations then distribute)."""
    return conn.execute(CITUS_PRESENT).fetchone() is not None


def placed(conn: psycopg.Connection) -> set[str]:
    """The tables already distributed or reference tables."""
    found = conn.execute("SELECT logicalrelid::regclass::text FROM pg_dist_partition")
    return {name for (name,) in found.fetchall()}


def pending(conn: psycopg.Connection) -> list[Placement]:
    """The tables not yet placed, of those that exist (a migration places the tables that
    the migrations before it made; a later one, those it adds)."""
    done = placed(conn)
    found = conn.execute(
        "SELECT name FROM unnest(%s::text[]) AS name WHERE to_regclass(name) IS NOT NULL",
        [[placement.table for placement in PLACEMENTS]],
    )
    existing = {name for (name,) in found.fetchall()}
    return [p for p in PLACEMENTS if p.table in existing and p.table not in done]


def row_count(conn: psycopg.Connection, table: str) -> int:
    found = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
    return found.fetchone()[0]


def distribute(
    conn: psycopg.Connection, on_table: Callable[[Placement], None] = lambda _: None
) -> list[Placement]:
    """Every table not yet placed, in turn, with its rows moved to the shards (each table in a
    transaction, or a savepoint of the caller's); ``on_table(placement)`` before each.
    The placements made."""
    made = pending(conn)
    for placement in made:
        on_table(placement)
        with conn.transaction():
            conn.execute(placement.statement())
            # The rows were copied to the shards; the coordinator's copy of them goes.
            conn.execute(
                "SELECT truncate_local_data_after_distributing_table(%s)", [placement.table]
            )
    return made
