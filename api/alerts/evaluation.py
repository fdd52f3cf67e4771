"""Evaluating usage thresholds (DESIGN §10): a crossing is recorded once per threshold and
period, when an evaluation first finds the period's figure over the limit.

What to look at: the marks ingest leaves with a batch's events (api.storage.marks), and the
thresholds whose ``recheck_at`` has come: a new one, and one whose allocations held now will
carry its period over the limit (or into the next period) with no further event. An
organization at a time: its marks and thresholds, then the periods already crossed, then the
figures of every period from a threshold's earliest mark to now not crossed yet (a late
event's past period too), read as the usage reads read them (api.reads.spans); then one
transaction records the crossings, sets each threshold's next recheck and deletes the marks
it read. A mark of events still ahead of the clock (ingest takes them up to 5 minutes ahead)
is kept from now on, so their period is looked at again once they count.

One evaluator at a time across processes (api.alerts.watcher). An evaluator stopped at any
point leaves the marks it has not deleted, and the next pass looks again; a crossing is keyed
by threshold and period start, so looking twice records it once.
"""

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy import (
    DateTime,
    Float,
    Text,
    Uuid,
    any_,
    bindparam,
    delete,
    select,
    union,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, insert

from api.core.filters import Filters, parse_filters
from api.core.periods import Period, period_holding
from api.core.windows import parse_zone
from api.reads.sections import SECTION_NAMED
from api.reads.spans import Span, read_spans
from api.storage.db import compile_statement, execute, unnest_rows
from api.storage.schema import threshold_crossings, threshold_marks, thresholds

# Sections whose figures grow with time alone, while an allocation is held.
_ACCRUING = frozenset({"compute", "storage"})
_SOON = timedelta(microseconds=1)
# How long after its creation a threshold is looked at again from its creation: events up
# to 5 minutes ahead of the clock, and batches whose transaction began before it existed,
# left no mark for it.
SETTLING = timedelta(minutes=6)

_ORG = bindparam("org", type_=Text)
_NOW = bindparam("now", type_=DateTime(timezone=True))

_ORGS_TO_LOOK_AT = compile_statement(
    union(
        select(threshold_marks.c.org_id),
        select(thresholds.c.org_id).where(thresholds.c.recheck_at <= _NOW),
    )
)
_MARKS = compile_statement(
    select(
        threshold_marks.c.mark_id,
        threshold_marks.c.section,
        threshold_marks.c.since,
        threshold_marks.c.until,
    ).where(threshold_marks.c.org_id == _ORG)
)
_WATCHED = compile_statement(
    select(
        thresholds.c.threshold_id,
        thresholds.c.section,
        thresholds.c.measure,
        thresholds.c.period,
        thresholds.c.tz,
        thresholds.c.limit,
        thresholds.c.filters,
        thresholds.c.created_at,
        thresholds.c.recheck_at,
    ).where(thresholds.c.org_id == _ORG)
)
_CROSSED = compile_statement(
    select(threshold_crossings.c.threshold_id, threshold_crossings.c.period_start).where(
        threshold_crossings.c.org_id == _ORG,
        threshold_crossings.c.period_end > bindparam("since", type_=DateTime(timezone=True)),
    )
)
_RECORD = compile_statement(
    insert(threshold_crossings)
    .from_select(
        [
            "org_id",
            "threshold_id",
            "period_start",
            "period_end",
            "value",
            "detected_at",
            "webhook_id",
            "next_attempt_at",
        ],
        select(
            thresholds.c.org_id,
            thresholds.c.threshold_id,
            bindparam("period_start", type_=DateTime(timezone=True)),
            bindparam("period_end", type_=DateTime(timezone=True)),
            bindparam("value", type_=Float),
            _NOW,
            bindparam("webhook_id", type_=Text),
            _NOW,
        ).where(  # a threshold deleted meanwhile gets no crossing
            thresholds.c.org_id == _ORG,
            thresholds.c.threshold_id == bindparam("threshold_id", type_=Text),
        ),
    )
    .on_conflict_do_nothing()
    .returning(threshold_crossings.c.threshold_id)
)
_rechecks = unnest_rows([("threshold_id", Text()), ("recheck_at", DateTime(timezone=True))])
_RECHECK = compile_statement(
    update(thresholds)
    .values(recheck_at=_rechecks.c.recheck_at)
    .where(thresholds.c.org_id == _ORG, thresholds.c.threshold_id == _rechecks.c.threshold_id)
)
_MARK_IDS = bindparam("mark_ids", type_=ARRAY(Uuid()))
_FORGET = compile_statement(
    delete(threshold_marks).where(
        threshold_marks.c.org_id == _ORG, threshold_marks.c.mark_id == any_(_MARK_IDS)
    )
)
_KEEP_FROM_NOW = compile_statement(
    update(threshold_marks)
    .values(since=_NOW)
    .where(threshold_marks.c.org_id == _ORG, threshold_marks.c.mark_id == any_(_MARK_IDS))
)


@dataclass(frozen=True, slots=True)
class _Watched:
    threshold_id: str
    section: str
    measure: str
    period: Period
    tz: str
    limit: float
    filters: Filters
    created_at: datetime
    recheck_at: datetime | None

    @classmethod
    def of(cls, row: Any) -> "_Watched":
        threshold_id, section, measure, period, tz, limit, filters, created_at, recheck_at = row
        return cls(
            threshold_id, section, measure, period, tz, limit,
            parse_filters(filters, SECTION_NAMED[section].filters), created_at, recheck_at,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Crossing:
    org: str
    threshold_id: str
    period_start: datetime
    period_end: datetime
    value: float


@dataclass(slots=True)
class Evaluation:
    orgs: int = 0
    thresholds: int = 0  # thresholds looked at
    spans_read: int = 0
    crossings: list[Crossing] = field(default_factory=list)  # recorded by this pass


def webhook_id(threshold_id: str, period_start: datetime) -> str:
    """The id every delivery of a crossing carries: one per threshold and period."""
    return f"msg_{threshold_id}_{int(period_start.timestamp())}"


def periods_from(since: datetime, now: datetime, period: Period, tz: str) -> Iterator[Span]:
    """Every period from the one holding ``since`` to the one holding ``now``."""
    zone = parse_zone(tz)
    start, end = period_holding(since, period, zone)
    while start <= now:
        yield start, end
        start, end = period_holding(end, period, zone)


async def evaluate(conn: psycopg.AsyncConnection, now: datetime) -> Evaluation:
    """Every organization with something to look at, looked at; by the one evaluator
    (api.alerts.watcher holds the lock)."""
    done = Evaluation()
    cursor = await execute(conn, _ORGS_TO_LOOK_AT, now=now)
    for (org,) in await cursor.fetchall():
        await evaluate_org(conn, org, now, done)
    return done


async def evaluate_org(
    conn: psycopg.AsyncConnection, org: str, now: datetime, done: Evaluation
) -> None:
    marks = await (await execute(conn, _MARKS, org=org)).fetchall()
    watched = [
        _Watched.of(row) for row in await (await execute(conn, _WATCHED, org=org)).fetchall()
    ]
    earliest: dict[str, datetime] = {}
    for _, section, since, _until in marks:
        earliest[section] = min(since, earliest.get(section, since))
    looks = {}  # threshold → the instant from which its periods are looked at
    for threshold in watched:
        since = [earliest[threshold.section]] if threshold.section in earliest else []
        if threshold.recheck_at is not None and threshold.recheck_at <= now:
            # The looks while a new threshold settles go back to its creation.
            settling = threshold.recheck_at <= threshold.created_at + SETTLING
            since.append(threshold.created_at if settling else threshold.recheck_at)
        if since:
            looks[threshold] = max(min(since), threshold.created_at)
    if looks:
        crossed = await _crossed(conn, org, min(looks.values()))
        plan = _Plan(now)
        for threshold, since in looks.items():
            plan.add(threshold, since, crossed)
        await plan.read(conn, org)
        await _record(conn, org, now, plan, marks, done)
        done.thresholds += len(looks)
        done.spans_read += len(plan.figures)
    elif marks:
        await _record(conn, org, now, _Plan(now), marks, done)
    done.orgs += 1


async def _crossed(conn: psycopg.AsyncConnection, org: str, since: datetime) -> set[tuple]:
    cursor = await execute(conn, _CROSSED, org=org, since=since)
    return {tuple(row) for row in await cursor.fetchall()}


@dataclass(slots=True)
class _Plan:
    """The spans to read, per section and filters, and what each threshold makes of them."""

    now: datetime
    spans: dict[tuple[str, Filters], set[Span]] = field(default_factory=lambda: defaultdict(set))
    # threshold → its periods to look at (those not crossed yet)
    periods: dict[_Watched, list[Span]] = field(default_factory=dict)
    figures: dict[tuple[str, Filters, Span], dict[str, Any]] = field(default_factory=dict)

    def add(self, threshold: _Watched, since: datetime, crossed: set[tuple]) -> None:
        key = (threshold.section, threshold.filters)
        # A mark of events ahead of the clock looks from now: they count once reached.
        periods = list(periods_from(min(since, self.now), self.now, threshold.period, threshold.tz))
        self.periods[threshold] = [
            period for period in periods if (threshold.threshold_id, period[0]) not in crossed
        ]
        for start, end in self.periods[threshold]:
            if min(end, self.now) > start:
                self.spans[key].add((start, min(end, self.now)))
        if threshold.section in _ACCRUING:
            # The current period now and at its end, if nothing changes: how fast it grows.
            start, end = periods[-1]
            self.spans[key] |= {(start, self.now), (start, end)}

    async def read(self, conn: psycopg.AsyncConnection, org: str) -> None:
        self.figures = await read_spans(conn, org, self.spans)

    def value(self, threshold: _Watched, span: Span) -> float:
        if span[1] <= span[0]:
            return 0
        return self.figures[(threshold.section, threshold.filters, span)][threshold.measure]

    def crossings(self, threshold: _Watched) -> list[tuple[Span, float]]:
        found = []
        for start, end in self.periods[threshold]:
            value = self.value(threshold, (start, min(end, self.now)))
            if value > threshold.limit:
                found.append(((start, end), value))
        return found

    def recheck(self, threshold: _Watched, crossing_now: bool) -> datetime | None:
        """When to look again with no new event: once a new threshold has settled; when the
        allocations held now carry the current period over the limit, or at its end while
        they grow it (the next period's figure grows from there); None when nothing will
        change without an event."""
        settled = threshold.created_at + SETTLING
        growing = self._growing(threshold, crossing_now)
        if self.now < settled:
            return settled if growing is None else min(growing, settled)
        return growing

    def _growing(self, threshold: _Watched, crossing_now: bool) -> datetime | None:
        if threshold.section not in _ACCRUING:
            return None
        start, end = period_holding(self.now, threshold.period, parse_zone(threshold.tz))
        at_now = self.value(threshold, (start, self.now))
        at_end = self.value(threshold, (start, end))
        if at_end <= at_now:
            return None
        crossed = crossing_now or (start, end) not in self.periods[threshold]
        if crossed or at_end <= threshold.limit:
            return end
        reached = self.now + (end - self.now) * ((threshold.limit - at_now) / (at_end - at_now))
        # Early rather than late by the float's rounding: a look that finds it just short
        # looks again a microsecond later.
        return max(reached - _SOON, self.now + _SOON)


async def _record(
    conn: psycopg.AsyncConnection,
    org: str,
    now: datetime,
    plan: _Plan,
    marks: list[Any],
    done: Evaluation,
) -> None:
    rechecks: list[tuple[str, datetime | None]] = []
    async with conn.transaction():
        for threshold in plan.periods:
            found = plan.crossings(threshold)
            for (start, end), value in found:
                cursor = await execute(
                    conn,
                    _RECORD,
                    org=org,
                    threshold_id=threshold.threshold_id,
                    period_start=start,
                    period_end=end,
                    value=value,
                    now=now,
                    webhook_id=webhook_id(threshold.threshold_id, start),
                )
                if await cursor.fetchone() is not None:
                    done.crossings.append(Crossing(org, threshold.threshold_id, start, end, value))
            current_crossed = any(end > now for (_, end), _ in found)
            rechecks.append((threshold.threshold_id, plan.recheck(threshold, current_crossed)))
        if rechecks:
            await execute(
                conn,
                _RECHECK,
                org=org,
                threshold_id=[threshold_id for threshold_id, _ in rechecks],
                recheck_at=[recheck_at for _, recheck_at in rechecks],
            )
        ahead = [mark_id for mark_id, _, _, until in marks if until >= now]
        looked_at = [mark_id for mark_id, _, _, until in marks if until < now]
        await execute(conn, _FORGET, org=org, mark_ids=looked_at)
        if ahead:
            await execute(conn, _KEEP_FROM_NOW, org=org, mark_ids=ahead, now=now)
