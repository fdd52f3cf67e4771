"""Usage thresholds (DESIGN §10): stored per organization, each with its signing secret."""

import secrets
from datetime import datetime
from typing import Any

import msgspec
import psycopg
from psycopg.types.json import Jsonb
from sqlalchemy import Text, bindparam, delete, select
from sqlalchemy.dialects.postgresql import JSONB, insert

from api.core.signatures import new_secret
from api.storage.anchors import register_orgs
from api.storage.db import compile_statement, execute
from api.storage.schema import thresholds

ID_PREFIX = "thr_"


class Threshold(msgspec.Struct, frozen=True, kw_only=True):
    threshold_id: str
    org: str
    section: str
    measure: str
    period: str
    tz: str
    limit: float
    filters: dict[str, list[str]]
    url: str
    created_at: datetime


_COLUMNS = [
    thresholds.c.threshold_id,
    thresholds.c.org_id,
    thresholds.c.section,
    thresholds.c.measure,
    thresholds.c.period,
    thresholds.c.tz,
    thresholds.c.limit,
    thresholds.c.filters,
    thresholds.c.url,
    thresholds.c.created_at,
]
_ORG = bindparam("org", type_=Text)
_ID = bindparam("threshold_id", type_=Text)
_ADD = compile_statement(
    insert(thresholds)
    .values(
        org_id=_ORG,
        threshold_id=_ID,
        section=bindparam("section", type_=Text),
        measure=bindparam("measure", type_=Text),
        period=bindparam("period", type_=Text),
        tz=bindparam("tz", type_=Text),
        limit=bindparam("limit"),
        filters=bindparam("filters", type_=JSONB),
        url=bindparam("url", type_=Text),
        secret=bindparam("secret", type_=Text),
    )
    .returning(*_COLUMNS)
)
_LIST = compile_statement(
    select(*_COLUMNS)
    .where(thresholds.c.org_id == _ORG)
    .order_by(thresholds.c.created_at, thresholds.c.threshold_id)
)
_ONE = compile_statement(
    select(*_COLUMNS).where(thresholds.c.org_id == _ORG, thresholds.c.threshold_id == _ID)
)
_REMOVE = compile_statement(
    delete(thresholds)
    .where(thresholds.c.org_id == _ORG, thresholds.c.threshold_id == _ID)
    .returning(thresholds.c.threshold_id)
)


def _threshold(row: Any) -> Threshold:
    threshold_id, org, section, measure, period, tz, limit, filters, url, created_at = row
    return Threshold(
        threshold_id=threshold_id,
        org=org,
        section=section,
        measure=measure,
        period=period,
        tz=tz,
        limit=limit,
        filters=filters,
        url=url,
        created_at=created_at,
    )


async def create_threshold(
    conn: psycopg.AsyncConnection,
    org: str,
    *,
    section: str,
    measure: str,
    period: str,
    tz: str,
    limit: float,
    filters: dict[str, list[str]],
    url: str,
) -> tuple[Threshold, str]:
    """A new threshold (its organization created if it has no events yet) and its signing
    secret, which is not stored anywhere it can be read back from the API."""
    secret = new_secret()
    async with conn.transaction():
        await register_orgs(conn, [org])
        cursor = await execute(
            conn,
            _ADD,
            org=org,
            threshold_id=ID_PREFIX + secrets.token_hex(8),
            section=section,
            measure=measure,
            period=period,
            tz=tz,
            limit=limit,
            filters=Jsonb(filters),
            url=url,
            secret=secret,
        )
        row = await cursor.fetchone()
    return _threshold(row), secret


async def list_thresholds(conn: psycopg.AsyncConnection, org: str) -> list[Threshold]:
    cursor = await execute(conn, _LIST, org=org)
    return [_threshold(row) for row in await cursor.fetchall()]


async def find_threshold(
    conn: psycopg.AsyncConnection, org: str, threshold_id: str
) -> Threshold | None:
    cursor = await execute(conn, _ONE, org=org, threshold_id=threshold_id)
    row = await cursor.fetchone()
    return None if row is None else _threshold(row)


async def delete_threshold(conn: psycopg.AsyncConnection, org: str, threshold_id: str) -> bool:
    """Whether there was such a threshold to delete."""
    cursor = await execute(conn, _REMOVE, org=org, threshold_id=threshold_id)
    return await cursor.fetchone() is not None
