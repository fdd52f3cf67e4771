"""A batch's rows as the write statements read them: joined to their organizations' rows.

On Citus every table is distributed on org_id, co-located with ``orgs``
(api.storage.distribution). A statement whose rows come from parameters alone (``unnest`` of
arrays) reads no distributed table, so Citus would run its SELECT on the coordinator and send
the rows on to the shards ("pull to coordinator"). Joined to ``orgs`` on org_id and narrowed
to the batch's organizations, the same SELECT reads a distributed table by its distribution
column, and Citus runs the whole statement on the shards of those organizations, one task per
shard: for one organization, a router statement. On PostgreSQL the join is one index probe per
organization. The org_id written is the ``orgs`` row's: Citus runs an INSERT on the shards
only when the distribution column it writes is a distributed table's.
"""

from collections.abc import Iterable
from typing import Any

import psycopg
from sqlalchemy import Subquery, Text, any_, bindparam, select
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.types import TypeEngine

from api.storage.db import compile_statement, execute, unnest_rows
from api.storage.schema import orgs

BATCH_ORGS = bindparam("batch_orgs", type_=ARRAY(Text))
_KNOWN_ORGS = compile_statement(select(orgs.c.org_id).where(orgs.c.org_id == any_(BATCH_ORGS)))
_LOCK_ORG = compile_statement(
    select(orgs.c.org_id).where(orgs.c.org_id == bindparam("org_id", type_=Text)).with_for_update()
)
_ADD_ORG = compile_statement(
    insert(orgs).values(org_id=bindparam("org_id", type_=Text)).on_conflict_do_nothing()
)


async def register_orgs(conn: psycopg.AsyncConnection, org_ids: Iterable[str]) -> None:
    """The organizations' rows, for those not yet known: inserted one at a time (each a
    router statement on Citus; a new organization is rare)."""
    wanted = set(org_ids)
    cursor = await execute(conn, _KNOWN_ORGS, **batch_orgs(wanted))
    known = {org_id for (org_id,) in await cursor.fetchall()}
    for org_id in sorted(wanted - known):
        await execute(conn, _ADD_ORG, org_id=org_id)


async def known_org(conn: psycopg.AsyncConnection, org_id: str, *, lock: bool = False) -> bool:
    """Whether the organization exists; with ``lock``, its row locked to the transaction's
    end (what is counted per organization stays counted until then)."""
    statement = _LOCK_ORG if lock else _KNOWN_ORGS
    params = {"org_id": org_id} if lock else batch_orgs([org_id])
    return await (await execute(conn, statement, **params)).fetchone() is not None


def anchored(columns: list[tuple[str, TypeEngine]], prefix: str = "") -> Subquery:
    """The rows of parallel array parameters (``unnest_rows``, with an ``org_id`` column),
    each joined to its organization's row, for the organizations ``batch_orgs`` names."""
    rows = unnest_rows(columns, prefix)
    return (
        select(orgs.c.org_id, *(rows.c[name] for name, _ in columns if name != "org_id"))
        .select_from(rows.join(orgs, orgs.c.org_id == rows.c.org_id))
        .where(orgs.c.org_id == any_(BATCH_ORGS))
        .subquery()
    )


def batch_orgs(org_ids: Iterable[str]) -> dict[str, Any]:
    """The ``batch_orgs`` parameter of the rows' organizations."""
    return {BATCH_ORGS.key: sorted(set(org_ids))}
