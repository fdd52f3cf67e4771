"""Usage thresholds (DESIGN §10): stored per organization, each with its signing secret."""

import secrets
from datetime import datetime
from typing import Any

import msgspec
import psycopg
from psycopg.types.json import Jsonb
from sqlalchemy import DateTime, Integer, Text, bindparam, delete, func, select, update
from sqlalchemy.dialects.postgresql import JSONB, insert

from api.core.signatures import new_secret
from api.storage.anchors import known_org, register_orgs
from api.storage.db import compile_statement, execute
from api.storage.schema import (
    threshold_crossings,
    threshold_deliveries,
    threshold_tests,
    thresholds,
)

ID_PREFIX = "thr_"
# Each is evaluated whenever its organization's events arrive: a bound on that work.
MAX_PER_ORG = 1_000
# Test webhooks kept per threshold, the latest: enough to see a receiver's recent answers,
# and a bound on what sending tests over and over stores.
TESTS_KEPT = 20


class TooManyThresholds(Exception):
    """The organization has as many thresholds as it may."""


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
        # The evaluator's first look: the current period may be over the limit already.
        recheck_at=func.now(),
    )
    .returning(*_COLUMNS)
)
_LIST = compile_statement(
    select(*_COLUMNS)
    .where(thresholds.c.org_id == _ORG)
    .order_by(thresholds.c.created_at, thresholds.c.threshold_id)
)
_COUNT = compile_statement(
    select(func.count()).select_from(thresholds).where(thresholds.c.org_id == _ORG)
)
_BY_ID = select(*_COLUMNS).where(thresholds.c.org_id == _ORG, thresholds.c.threshold_id == _ID)
_ONE = compile_statement(_BY_ID)
_REMOVE = compile_statement(
    delete(thresholds)
    .where(thresholds.c.org_id == _ORG, thresholds.c.threshold_id == _ID)
    .returning(thresholds.c.threshold_id)
)
# Crossings before their attempts: see record_attempt.
_REMOVE_HISTORY = [
    compile_statement(delete(table).where(table.c.org_id == _ORG, table.c.threshold_id == _ID))
    for table in (threshold_crossings, threshold_deliveries, threshold_tests)
]
_ROTATE = compile_statement(
    update(thresholds)
    # SET's right-hand sides read the row as it was: the replaced secret.
    .values(
        previous_secret=thresholds.c.secret,
        secret=bindparam("secret", type_=Text),
        rotated_at=func.now(),
    )
    .where(thresholds.c.org_id == _ORG, thresholds.c.threshold_id == _ID)
    .returning(thresholds.c.rotated_at)
)
# The threshold and its secrets in one read: a test webhook is built and signed from both.
_ONE_SIGNED = compile_statement(
    _BY_ID.add_columns(thresholds.c.secret, thresholds.c.previous_secret, thresholds.c.rotated_at)
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
        await known_org(conn, org, lock=True)  # creations of one organization in turn
        (count,) = await (await execute(conn, _COUNT, org=org)).fetchone()
        if count >= MAX_PER_ORG:
            raise TooManyThresholds(f"{org} has {count:,} thresholds, the most one may have")
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


async def list_thresholds(conn: psycopg.AsyncConnection, org: str) -> list[Threshold] | None:
    """The organization's thresholds in creation order; None if there is no such
    organization."""
    cursor = await execute(conn, _LIST, org=org)
    found = [_threshold(row) for row in await cursor.fetchall()]
    return found if found or await known_org(conn, org) else None


async def find_threshold(
    conn: psycopg.AsyncConnection, org: str, threshold_id: str
) -> Threshold | None:
    cursor = await execute(conn, _ONE, org=org, threshold_id=threshold_id)
    row = await cursor.fetchone()
    return None if row is None else _threshold(row)


async def delete_threshold(conn: psycopg.AsyncConnection, org: str, threshold_id: str) -> bool:
    """Whether there was such a threshold to delete; its crossings and their attempts go
    with it, an attempt under way included (it is not sent again, and record_attempt
    records nothing of it)."""
    async with conn.transaction():
        cursor = await execute(conn, _REMOVE, org=org, threshold_id=threshold_id)
        found = await cursor.fetchone() is not None
        for statement in _REMOVE_HISTORY:
            await execute(conn, statement, org=org, threshold_id=threshold_id)
    return found


class Rotated(msgspec.Struct, frozen=True, kw_only=True):
    secret: str
    rotated_at: datetime


async def rotate_secret(
    conn: psycopg.AsyncConnection, org: str, threshold_id: str
) -> Rotated | None:
    """A new signing secret for the threshold, the one it replaces kept as its previous (a
    previous one before it is forgotten); None if there is no such threshold."""
    secret = new_secret()
    cursor = await execute(conn, _ROTATE, org=org, threshold_id=threshold_id, secret=secret)
    row = await cursor.fetchone()
    return None if row is None else Rotated(secret=secret, rotated_at=row[0])


class Secrets(msgspec.Struct, frozen=True, kw_only=True):
    secret: str
    previous: str | None  # the one the latest rotation replaced
    rotated_at: datetime | None


async def find_signed_threshold(
    conn: psycopg.AsyncConnection, org: str, threshold_id: str
) -> tuple[Threshold, Secrets] | None:
    """The organization's threshold of that id and its signing secrets, read together."""
    cursor = await execute(conn, _ONE_SIGNED, org=org, threshold_id=threshold_id)
    row = await cursor.fetchone()
    if row is None:
        return None
    secret, previous, rotated_at = row[len(_COLUMNS) :]
    signing = Secrets(secret=secret, previous=previous, rotated_at=rotated_at)
    return _threshold(row[: len(_COLUMNS)]), signing


class Attempt(msgspec.Struct, frozen=True, kw_only=True):
    attempt: int  # 1 for the first
    attempted_at: datetime
    status: int | None  # the receiver's HTTP status, if it answered
    error: str | None  # why it was not delivered


class Delivery(msgspec.Struct, frozen=True, kw_only=True):
    """A crossing and the attempts to deliver it."""

    period_start: datetime
    period_end: datetime
    value: float
    detected_at: datetime
    webhook_id: str
    delivered_at: datetime | None
    next_attempt_at: datetime | None
    attempts: list[Attempt]


_crossing = threshold_crossings.c
_attempt = threshold_deliveries.c
_TIMESTAMP = DateTime(timezone=True)
_PERIOD = bindparam("period_start", type_=_TIMESTAMP)
_AFTER_ATTEMPT = compile_statement(
    update(threshold_crossings)
    .values(
        attempts=bindparam("attempt", type_=Integer),
        delivered_at=bindparam("delivered_at", type_=_TIMESTAMP),
        next_attempt_at=bindparam("next_attempt_at", type_=_TIMESTAMP),
    )
    .where(
        _crossing.org_id == _ORG, _crossing.threshold_id == _ID, _crossing.period_start == _PERIOD
    )
    .returning(_crossing.threshold_id)
)
_ADD_ATTEMPT = compile_statement(
    insert(threshold_deliveries).values(
        org_id=_ORG,
        threshold_id=_ID,
        period_start=_PERIOD,
        attempt=bindparam("attempt", type_=Integer),
        attempted_at=bindparam("attempted_at", type_=_TIMESTAMP),
        status=bindparam("status", type_=Integer),
        error=bindparam("error", type_=Text),
    )
)
_CROSSINGS = compile_statement(
    select(
        _crossing.period_start,
        _crossing.period_end,
        _crossing.value,
        _crossing.detected_at,
        _crossing.webhook_id,
        _crossing.delivered_at,
        _crossing.next_attempt_at,
    )
    .where(_crossing.org_id == _ORG, _crossing.threshold_id == _ID)
    .order_by(_crossing.period_start.desc())
    .limit(bindparam("limit", type_=Integer))
)
_ATTEMPTS = compile_statement(
    select(
        _attempt.period_start,
        _attempt.attempt,
        _attempt.attempted_at,
        _attempt.status,
        _attempt.error,
    )
    .where(
        _attempt.org_id == _ORG,
        _attempt.threshold_id == _ID,
        _attempt.period_start >= bindparam("since", type_=_TIMESTAMP),
    )
    .order_by(_attempt.period_start, _attempt.attempt)
)


async def record_attempt(
    conn: psycopg.AsyncConnection,
    org: str,
    threshold_id: str,
    period_start: datetime,
    attempt: Attempt,
    *,
    delivered: bool,
    next_attempt_at: datetime | None,
) -> bool:
    """Records an attempt to deliver the threshold's crossing of the period from
    ``period_start``, and where the crossing stands after it: delivered, due again at
    ``next_attempt_at``, or given up (neither). False, with nothing recorded, if the
    threshold was deleted meanwhile.

    The crossing is updated first, which locks its row until the commit: a deletion that
    came first has removed it (nothing to update, nothing recorded), and one that comes
    later waits, then deletes the attempt with the crossing (delete_threshold deletes the
    crossings first, and each of its statements sees what committed before it began). An
    attempt inserted as it ended, whatever became of its threshold meanwhile, would be left
    behind by a deletion made while it was under way."""
    key = {"org": org, "threshold_id": threshold_id, "period_start": period_start}
    async with conn.transaction():
        cursor = await execute(
            conn,
            _AFTER_ATTEMPT,
            **key,
            attempt=attempt.attempt,
            delivered_at=attempt.attempted_at if delivered else None,
            next_attempt_at=next_attempt_at,
        )
        if await cursor.fetchone() is None:
            return False
        await execute(
            conn,
            _ADD_ATTEMPT,
            **key,
            attempt=attempt.attempt,
            attempted_at=attempt.attempted_at,
            status=attempt.status,
            error=attempt.error,
        )
    return True


async def list_deliveries(
    conn: psycopg.AsyncConnection, org: str, threshold_id: str, limit: int
) -> list[Delivery]:
    """The threshold's latest ``limit`` crossings, the latest first, each with its attempts."""
    cursor = await execute(conn, _CROSSINGS, org=org, threshold_id=threshold_id, limit=limit)
    crossings = await cursor.fetchall()
    if not crossings:
        return []
    since = crossings[-1][0]
    cursor = await execute(conn, _ATTEMPTS, org=org, threshold_id=threshold_id, since=since)
    attempts: dict[datetime, list[Attempt]] = {}
    for period_start, attempt, attempted_at, status, error in await cursor.fetchall():
        attempts.setdefault(period_start, []).append(
            Attempt(attempt=attempt, attempted_at=attempted_at, status=status, error=error)
        )
    return [
        Delivery(
            period_start=start,
            period_end=end,
            value=value,
            detected_at=detected_at,
            webhook_id=webhook_id,
            delivered_at=delivered_at,
            next_attempt_at=next_attempt_at,
            attempts=attempts.get(start, []),
        )
        for start, end, value, detected_at, webhook_id, delivered_at, next_attempt_at in crossings
    ]


class WebhookTest(msgspec.Struct, frozen=True, kw_only=True):
    """A test webhook sent on request, and its one attempt's outcome."""

    webhook_id: str
    sent_at: datetime
    status: int | None  # the receiver's HTTP status, if it answered
    error: str | None  # why it was not delivered
    duration_ms: int  # from the attempt's start to its outcome


_test = threshold_tests.c
_OF_THRESHOLD = (_test.org_id == _ORG, _test.threshold_id == _ID)
# A row lock that a deletion of the threshold waits on, and that waits on one under way.
_LOCK_THRESHOLD = compile_statement(
    select(thresholds.c.threshold_id)
    .where(thresholds.c.org_id == _ORG, thresholds.c.threshold_id == _ID)
    .with_for_update(read=True, key_share=True)
)
_ADD_TEST = compile_statement(
    insert(threshold_tests).values(
        org_id=_ORG,
        threshold_id=_ID,
        webhook_id=bindparam("webhook_id", type_=Text),
        sent_at=bindparam("sent_at", type_=_TIMESTAMP),
        status=bindparam("status", type_=Integer),
        error=bindparam("error", type_=Text),
        duration_ms=bindparam("duration_ms", type_=Integer),
    )
)
_LATEST_TESTS = (
    select(*_test).where(*_OF_THRESHOLD).order_by(_test.sent_at.desc(), _test.webhook_id.desc())
)
_KEPT = _LATEST_TESTS.limit(TESTS_KEPT).with_only_columns(_test.webhook_id).scalar_subquery()
_PRUNE_TESTS = compile_statement(
    delete(threshold_tests).where(*_OF_THRESHOLD, _test.webhook_id.not_in(_KEPT))
)
_TESTS = compile_statement(
    _LATEST_TESTS.with_only_columns(
        _test.webhook_id, _test.sent_at, _test.status, _test.error, _test.duration_ms
    )
)


async def record_test(
    conn: psycopg.AsyncConnection, org: str, threshold_id: str, test: WebhookTest
) -> bool:
    """Records a test webhook, keeping the threshold's latest TESTS_KEPT; False, with nothing
    recorded, if the threshold was deleted meanwhile. The threshold's row is locked first, as
    record_attempt locks the crossing's: a deletion that came first leaves nothing to lock,
    one that comes later waits and deletes this test with the rest."""
    key = {"org": org, "threshold_id": threshold_id}
    async with conn.transaction():
        if await (await execute(conn, _LOCK_THRESHOLD, **key)).fetchone() is None:
            return False
        await execute(
            conn,
            _ADD_TEST,
            **key,
            webhook_id=test.webhook_id,
            sent_at=test.sent_at,
            status=test.status,
            error=test.error,
            duration_ms=test.duration_ms,
        )
        await execute(conn, _PRUNE_TESTS, **key)
    return True


async def list_tests(
    conn: psycopg.AsyncConnection, org: str, threshold_id: str
) -> list[WebhookTest]:
    """The threshold's test webhooks kept, the latest first."""
    cursor = await execute(conn, _TESTS, org=org, threshold_id=threshold_id)
    return [
        WebhookTest(
            webhook_id=webhook_id,
            sent_at=sent_at,
            status=status,
            error=error,
            duration_ms=duration_ms,
        )
        for webhook_id, sent_at, status, error, duration_ms in await cursor.fetchall()
    ]
