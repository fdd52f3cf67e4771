"""Delivering crossings (DESIGN §10): each a Standard Webhooks POST to its threshold's URL,
at least once.

A crossing is recorded due at once (api.alerts.evaluation). Each attempt is recorded; one
that fails (a timeout, a refused connection or address, any answer but 2xx) is tried again
after the next wait of ``RETRY_AFTER``, and after the last the crossing is given up: the
last attempt comes 23 h 35 min after the first. Every attempt of a crossing carries its one
``webhook-id``, so a receiver that got it before can tell. Attempts run side by side, each
bounded in time (api.alerts.sender), so a slow receiver holds up no other.
"""

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import msgspec
import psycopg
from psycopg.rows import namedtuple_row
from sqlalchemy import DateTime, Integer, Text, bindparam, insert, select, update

from api.alerts.sender import Sent, send_webhook
from api.core.signatures import signed_headers
from api.core.timestamps import utc_iso
from api.storage.db import compile_statement, execute
from api.storage.schema import threshold_crossings, threshold_deliveries, thresholds

RETRY_AFTER = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=8),
    timedelta(hours=8),
)
BATCH = 64  # crossings taken at a time
SIDE_BY_SIDE = 16  # attempts under way at once
_TIMESTAMP = DateTime(timezone=True)
_NOW = bindparam("now", type_=_TIMESTAMP)
_KEY = {
    "org_id": bindparam("org", type_=Text),
    "threshold_id": bindparam("threshold_id", type_=Text),
    "period_start": bindparam("period_start", type_=_TIMESTAMP),
}

crossing, threshold = threshold_crossings.c, thresholds.c
# Every organization's due crossings: background work that reads each shard on Citus.
_DUE = compile_statement(
    select(
        crossing.org_id,
        crossing.threshold_id,
        crossing.period_start,
        crossing.period_end,
        crossing.value,
        crossing.detected_at,
        crossing.webhook_id,
        crossing.attempts,
        threshold.section,
        threshold.measure,
        threshold.tz,
        threshold.limit,
        threshold.filters,
        threshold.url,
        threshold.secret,
    )
    .join_from(
        threshold_crossings,
        thresholds,
        (threshold.org_id == crossing.org_id) & (threshold.threshold_id == crossing.threshold_id),
    )
    .where(crossing.next_attempt_at <= _NOW)
    .order_by(crossing.next_attempt_at)
    .limit(BATCH)
)
_ATTEMPT = compile_statement(
    insert(threshold_deliveries).values(
        **_KEY,
        attempt=bindparam("attempt", type_=Integer),
        attempted_at=bindparam("attempted_at", type_=_TIMESTAMP),
        status=bindparam("status", type_=Integer),
        error=bindparam("error", type_=Text),
    )
)
_AFTER_ATTEMPT = compile_statement(
    update(threshold_crossings)
    .values(
        attempts=bindparam("attempt", type_=Integer),
        delivered_at=bindparam("delivered_at", type_=_TIMESTAMP),
        next_attempt_at=bindparam("next_attempt_at", type_=_TIMESTAMP),
    )
    .where(*(crossing[name] == value for name, value in _KEY.items()))
)


class _Period(msgspec.Struct, frozen=True, kw_only=True):
    start: datetime
    end: datetime
    tz: str


class CrossedBody(msgspec.Struct, frozen=True, kw_only=True):
    """What a webhook says (DESIGN §10)."""

    type: str = "usage.threshold.crossed"
    org: str
    threshold_id: str
    section: str
    measure: str
    period: _Period
    limit: float
    value: float
    detected_at: datetime
    page_url: str


def page_url(public_url: str, row: Any) -> str:
    """The usage page over the crossed period, in the threshold's zone, with its filters."""
    query = [("start", utc_iso(row.period_start)), ("end", utc_iso(row.period_end)), ("tz", row.tz)]
    query += [
        (f"{row.section}.{name}", value) for name, values in row.filters.items() for value in values
    ]
    return f"{public_url.rstrip('/')}/organizations/{row.org_id}/activity/usage?{urlencode(query)}"


def body_of(row: Any, public_url: str) -> bytes:
    return msgspec.json.encode(
        CrossedBody(
            org=row.org_id,
            threshold_id=row.threshold_id,
            section=row.section,
            measure=row.measure,
            period=_Period(start=row.period_start, end=row.period_end, tz=row.tz),
            limit=row.limit,
            value=row.value,
            detected_at=row.detected_at,
            page_url=page_url(public_url, row),
        )
    )


@dataclass(slots=True)
class Deliveries:
    attempted: int = 0
    delivered: int = 0


async def deliver_due(
    conn: psycopg.AsyncConnection,
    now: Callable[[], datetime],
    *,
    allowed_hosts: frozenset[str],
    public_url: str,
) -> Deliveries:
    """Every crossing due by ``now()`` attempted once, a batch at a time."""
    done = Deliveries()
    limit = asyncio.Semaphore(SIDE_BY_SIDE)

    async def attempt(row: Any) -> tuple[Any, datetime, Sent]:
        async with limit:
            attempted_at = now()
            try:
                body = body_of(row, public_url)
                # Signed at the wall clock's time, which receivers hold it against (a replay
                # is one whose timestamp is minutes off theirs).
                headers = signed_headers(row.secret, row.webhook_id, int(time.time()), body)
                sent = await send_webhook(row.url, headers, body, allowed_hosts=allowed_hosts)
            except Exception as error:
                # A crossing that cannot be sent is a failed attempt, never the others' end.
                sent = Sent(None, f"the attempt failed: {type(error).__name__}")
            return row, attempted_at, sent

    while True:
        cursor = conn.cursor(row_factory=namedtuple_row)
        due = await (await cursor.execute(_DUE.sql, _DUE.params({"now": now()}))).fetchall()
        if not due:
            return done
        # Each recorded as it ends: a slow receiver's attempt holds up no other's record.
        for finished in asyncio.as_completed([attempt(row) for row in due]):
            row, attempted_at, sent = await finished
            await _record(conn, row, attempted_at, sent)
            done.attempted += 1
            done.delivered += sent.delivered
        if len(due) < BATCH:
            return done


async def _record(
    conn: psycopg.AsyncConnection, row: Any, attempted_at: datetime, sent: Sent
) -> None:
    number = row.attempts + 1
    retry = None
    if not sent.delivered and number <= len(RETRY_AFTER):
        retry = attempted_at + RETRY_AFTER[number - 1]
    key = {"org": row.org_id, "threshold_id": row.threshold_id, "period_start": row.period_start}
    async with conn.transaction():
        await execute(
            conn,
            _ATTEMPT,
            **key,
            attempt=number,
            attempted_at=attempted_at,
            status=sent.status,
            error=sent.error,
        )
        await execute(
            conn,
            _AFTER_ATTEMPT,
            **key,
            attempt=number,
            delivered_at=attempted_at if sent.delivered else None,
            next_attempt_at=retry,
        )
