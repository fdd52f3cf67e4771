"""Delivering crossings (DESIGN §10): each a Standard Webhooks POST to its threshold's URL,
at least once.

A crossing is recorded due at once (api.alerts.evaluation). Each attempt is recorded; one
that fails (a timeout, a refused connection or address, any answer but 2xx) is tried again
after the next wait of ``RETRY_AFTER``, and after the last the crossing is given up: the
last attempt comes 23 h 35 min after the first. Every attempt of a crossing carries its one
``webhook-id``, so a receiver that got it before can tell.

Fair across organizations and hosts. A receiver that accepts and never answers holds its
attempt for the sender's whole timeout (api.alerts.sender), so the attempts under way are
bounded in all, per organization and per host (``Bounds``), and each due crossing starts as
soon as its organization and host have room, never behind attempts of others: a hanging
host only ever holds its own few slots, an organization's many thresholds only its own. The
due crossings are read in turns, every organization's first before anyone's second (and
within an organization, every host's first), so that one organization's thousand due
crossings are not read ahead of another's one.
"""

import asyncio
import math
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import msgspec
import psycopg
from psycopg.rows import namedtuple_row
from sqlalchemy import (
    ARRAY,
    DateTime,
    Text,
    all_,
    bindparam,
    func,
    literal,
    select,
)

from api.alerts.sender import Sent, send_signed
from api.alerts.status import Standing
from api.core.signatures import signing_secrets
from api.core.timestamps import utc_iso
from api.reads.sections import figure
from api.storage.db import compile_statement
from api.storage.schema import threshold_crossings, thresholds
from api.storage.thresholds import Attempt, Secrets, Threshold, WebhookTest, record_attempt

RETRY_AFTER = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=8),
    timedelta(hours=8),
)
LOOKAHEAD = 256  # due crossings read at a time, in turns
_TIMESTAMP = DateTime(timezone=True)
_NOW = bindparam("now", type_=_TIMESTAMP)
# A URL's host and port as written (scheme://[userinfo@]host[:port]/...), lowercased: the
# receiver its attempts count against. A port written out where it is the default
# (https://a:443) counts apart from the one left out, which only splits that host's share.
_AUTHORITY = r"^[^:/?#]+://(?:[^@/?#]*@)?([^/?#]*)"


@dataclass(frozen=True, slots=True)
class Bounds:
    """Attempts under way at once: in all, of one organization, of one organization to one
    host (api.settings: USAGE_WEBHOOK_CONCURRENCY, USAGE_WEBHOOK_ORG_CONCURRENCY,
    USAGE_WEBHOOK_HOST_CONCURRENCY).
    An organization's share is above a host's so that one of its hosts hanging leaves it room
    for its others."""

    in_all: int = 64
    per_org: int = 8
    per_host: int = 4


DEFAULT_BOUNDS = Bounds()


crossing, threshold = threshold_crossings.c, thresholds.c
_due = (
    select(
        crossing.org_id,
        crossing.threshold_id,
        crossing.period_start,
        crossing.period_end,
        crossing.value,
        crossing.detected_at,
        crossing.webhook_id,
        crossing.attempts,
        crossing.next_attempt_at,
        threshold.section,
        threshold.measure,
        threshold.tz,
        threshold.limit,
        threshold.filters,
        threshold.url,
        threshold.secret,
        threshold.previous_secret,
        threshold.rotated_at,
        func.lower(func.substring(threshold.url, literal(_AUTHORITY))).label("host"),
    )
    .join_from(
        threshold_crossings,
        thresholds,
        (threshold.org_id == crossing.org_id) & (threshold.threshold_id == crossing.threshold_id),
    )
    .where(
        crossing.next_attempt_at <= _NOW,
        # Those under way: still due until their attempt is recorded.
        crossing.webhook_id != all_(bindparam("started", type_=ARRAY(Text))),
    )
    .subquery("due")
)
_in_host = select(
    _due,
    func.row_number()
    .over(partition_by=(_due.c.org_id, _due.c.host), order_by=_due.c.next_attempt_at)
    .label("in_host"),
).subquery("in_host")
_turns = select(
    _in_host,
    func.row_number()
    .over(
        partition_by=_in_host.c.org_id,
        order_by=(_in_host.c.in_host, _in_host.c.next_attempt_at),
    )
    .label("turn"),
).subquery("turns")
# Every organization's due crossings, in turns: background work that reads each shard on
# Citus (each window is an organization's, which a shard holds whole).
_DUE = compile_statement(
    select(_turns).order_by(_turns.c.turn, _turns.c.next_attempt_at).limit(LOOKAHEAD)
)


class _Period(msgspec.Struct, frozen=True, kw_only=True):
    start: datetime
    end: datetime
    tz: str


class CrossedBody(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What a webhook says (DESIGN §10)."""

    type: str  # CROSSED_TYPE or TEST_TYPE
    org: str
    threshold_id: str
    section: str
    measure: str
    period: _Period
    limit: int | float  # an integer for the measures that count
    value: int | float
    detected_at: datetime
    page_url: str
    test: bool = False  # sent on request (TEST_TYPE), not a crossing; only then given


CROSSED_TYPE = "usage.threshold.crossed"
TEST_TYPE = "usage.threshold.test"


def page_url(
    public_url: str, org: str, section: str, tz: str, filters: dict[str, list[str]], period: Any
) -> str:
    """The usage page over the period, in the threshold's zone, with its filters."""
    query = [("start", utc_iso(period.start)), ("end", utc_iso(period.end)), ("tz", tz)]
    query += [(f"{section}.{name}", value) for name, values in filters.items() for value in values]
    return f"{public_url.rstrip('/')}/organizations/{org}/activity/usage?{urlencode(query)}"


def body_of(row: Any, public_url: str) -> bytes:
    """A crossing's webhook body, from a due crossing as _DUE reads it."""
    period = _Period(start=row.period_start, end=row.period_end, tz=row.tz)
    return _body(CROSSED_TYPE, row, row.org_id, period, row.value, row.detected_at, public_url)


def _body_of_test(
    threshold: Threshold, standing: Standing, detected_at: datetime, public_url: str
) -> bytes:
    """A test webhook's body: a crossing's, of the threshold's current period and its figure
    so far, typed and marked as a test."""
    period = _Period(start=standing.start, end=standing.end, tz=threshold.tz)
    return _body(
        TEST_TYPE, threshold, threshold.org, period, standing.value, detected_at, public_url
    )


def _body(
    type_: str,
    threshold: Any,
    org: str,
    period: _Period,
    value: float,
    detected_at: datetime,
    public_url: str,
) -> bytes:
    """A webhook's body; ``threshold``: what it says of the threshold (a Threshold, or a
    due crossing's row), its organization ``org``."""
    return msgspec.json.encode(
        CrossedBody(
            type=type_,
            org=org,
            threshold_id=threshold.threshold_id,
            section=threshold.section,
            measure=threshold.measure,
            period=period,
            limit=figure(threshold.measure, threshold.limit),
            value=figure(threshold.measure, value),
            detected_at=detected_at,
            page_url=page_url(
                public_url, org, threshold.section, threshold.tz, threshold.filters, period
            ),
            test=type_ == TEST_TYPE,
        )
    )


async def send_test(
    threshold: Threshold,
    signing: Secrets,
    standing: Standing,
    sent_at: datetime,
    *,
    allowed_hosts: frozenset[str],
    public_url: str,
) -> WebhookTest:
    """A test webhook of the threshold, at its ``standing`` at ``sent_at``: one attempt,
    signed and checked as a crossing's, never retried."""
    body = _body_of_test(threshold, standing, sent_at, public_url)
    # Its own webhook-id: a receiver that dedupes must not take it for a crossing's.
    webhook_id = f"msg_{threshold.threshold_id}_test_{secrets.token_hex(8)}"
    started = time.monotonic()
    sent = await send_signed(
        threshold.url,
        signing_secrets(signing.secret, signing.previous, signing.rotated_at, sent_at),
        webhook_id,
        body,
        allowed_hosts,
    )
    return WebhookTest(
        webhook_id=webhook_id,
        sent_at=sent_at,
        status=sent.status,
        error=sent.error,
        duration_ms=round((time.monotonic() - started) * 1000),
    )


@dataclass(slots=True)
class Deliveries:
    attempted: int = 0
    delivered: int = 0


class _Slots:
    """The attempts under way, counted in all, per organization and per host."""

    def __init__(self, bounds: Bounds) -> None:
        self._bounds = bounds
        self._orgs: Counter[str] = Counter()
        # Hosts counted per organization: a receiver many tenants share (a chat service's
        # incoming webhooks) is not one tenant's to fill.
        self._hosts: Counter[tuple[str, str | None]] = Counter()
        self._taken = 0

    def take(self, row: Any) -> bool:
        """A slot for ``row``'s attempt, if its organization, its host and all have room."""
        bounds = self._bounds
        if (
            self._taken >= bounds.in_all
            or self._orgs[row.org_id] >= bounds.per_org
            or self._hosts[row.org_id, row.host] >= bounds.per_host
        ):
            return False
        self._taken += 1
        self._orgs[row.org_id] += 1
        self._hosts[row.org_id, row.host] += 1
        return True

    def give_back(self, row: Any) -> None:
        self._taken -= 1
        self._orgs[row.org_id] -= 1
        self._hosts[row.org_id, row.host] -= 1


async def deliver_due(
    conn: psycopg.AsyncConnection,
    now: Callable[[], datetime],
    *,
    allowed_hosts: frozenset[str],
    public_url: str,
    bounds: Bounds = DEFAULT_BOUNDS,
    look_every: float = 5.0,
    woken: asyncio.Event | None = None,
    counted: Callable[[Sent], object] = lambda _sent: None,
) -> Deliveries:
    """Every crossing due by ``now()`` attempted, each as soon as ``bounds`` leave its
    organization and host room, until none is left due or under way (an attempt that fails
    is due again at its retry, at least 5 s on, and made in this pass if it is still going).
    While attempts are under way the due crossings are read again every ``look_every``
    seconds and whenever ``woken`` is set (a crossing found meanwhile), so that one falling
    due meanwhile is attempted in this pass too, not held behind slow attempts. ``counted``
    hears of each attempt as it is recorded."""
    done = Deliveries()
    slots = _Slots(bounds)
    under_way: dict[asyncio.Task[tuple[datetime, Sent]], Any] = {}
    started: set[str] = set()  # the webhook ids under way
    waiting: list[Any] = []  # read, not yet started: their organization or host was full
    looked_at = -math.inf

    def start(row: Any) -> bool:
        if not slots.take(row):
            return False
        under_way[asyncio.create_task(_attempt(row, now, allowed_hosts, public_url))] = row
        started.add(row.webhook_id)
        return True

    try:
        while True:
            if not waiting or time.monotonic() - looked_at >= look_every or _set(woken):
                if woken is not None:
                    woken.clear()
                waiting = await _read_due(conn, now(), started)
                # From the read's end: a read slower than look_every is not followed by
                # another at once.
                looked_at = time.monotonic()
            waiting = [row for row in waiting if not start(row)]
            if not under_way:
                return done  # with every slot free, the first due would have started
            for task in await _ended(under_way, woken, looked_at + look_every):
                row = under_way.pop(task)
                slots.give_back(row)
                attempted_at, sent = task.result()
                # Each recorded as it ends: a slow receiver's attempt holds up no other's.
                await _record(conn, row, attempted_at, sent)
                # Recorded, it is due again only at its retry, which this pass makes too if
                # it comes before the pass ends: a retry never waits for others' slow
                # attempts to end the pass.
                started.discard(row.webhook_id)
                done.attempted += 1
                done.delivered += sent.delivered
                counted(sent)
    finally:
        # Cut short (the watcher stopping, the database failing): those under way end
        # unrecorded, still due, and are attempted again at the next pass.
        for task in under_way:
            task.cancel()
        await asyncio.gather(*under_way, return_exceptions=True)


def _set(event: asyncio.Event | None) -> bool:
    return event is not None and event.is_set()


async def _read_due(conn: psycopg.AsyncConnection, now: datetime, started: set[str]) -> list[Any]:
    cursor = conn.cursor(row_factory=namedtuple_row)
    await cursor.execute(_DUE.sql, _DUE.params({"now": now, "started": list(started)}))
    return await cursor.fetchall()


async def _ended(
    under_way: dict[asyncio.Task[tuple[datetime, Sent]], Any],
    woken: asyncio.Event | None,
    until: float,
) -> list[asyncio.Task[tuple[datetime, Sent]]]:
    """The attempts that have ended once one ends, ``woken`` is set or ``until`` (a
    time.monotonic()) comes; perhaps none."""
    waits: set[asyncio.Future[Any]] = set(under_way)
    wake = None if woken is None else asyncio.ensure_future(woken.wait())
    if wake is not None:
        waits.add(wake)
    try:
        await asyncio.wait(
            waits,
            timeout=max(until - time.monotonic(), 0),
            return_when=asyncio.FIRST_COMPLETED,
        )
    finally:
        if wake is not None:
            wake.cancel()
    return [task for task in under_way if task.done()]


async def _attempt(
    row: Any, now: Callable[[], datetime], allowed_hosts: frozenset[str], public_url: str
) -> tuple[datetime, Sent]:
    attempted_at = now()
    try:
        signing = signing_secrets(row.secret, row.previous_secret, row.rotated_at, attempted_at)
        body = body_of(row, public_url)
        sent = await send_signed(row.url, signing, row.webhook_id, body, allowed_hosts)
    except Exception as error:
        # A crossing that cannot be sent is a failed attempt, never the others' end.
        sent = Sent(None, f"the attempt failed: {type(error).__name__}")
    return attempted_at, sent


async def _record(
    conn: psycopg.AsyncConnection, row: Any, attempted_at: datetime, sent: Sent
) -> None:
    number = row.attempts + 1
    retry = None
    if not sent.delivered and number <= len(RETRY_AFTER):
        retry = attempted_at + RETRY_AFTER[number - 1]
    attempt = Attempt(
        attempt=number, attempted_at=attempted_at, status=sent.status, error=sent.error
    )
    # Nothing is recorded of a crossing whose threshold was deleted while its attempt was
    # under way (record_attempt).
    await record_attempt(
        conn,
        row.org_id,
        row.threshold_id,
        row.period_start,
        attempt,
        delivered=sent.delivered,
        next_attempt_at=retry,
    )
