"""What the thresholds' evaluator must look at again: a mark per organization and section of
a batch's new events, with their earliest and latest times, written in the batch's
transaction, so the evaluator sees a mark only with its events and never misses one.

Only an organization with a threshold on the section gets a mark: ingest pays one small
read a batch to know which (and a write when there are). Marks are only ever inserted
(no two batches wait for one row) and the evaluator deletes those it has looked at
(api.alerts.evaluation).
"""

from collections.abc import Iterable
from datetime import datetime
from uuid import uuid4

import psycopg
from sqlalchemy import DateTime, Text, Uuid, any_, select

from api.core.events import (
    Event,
    LlmCallEvent,
    MessageSentEvent,
    ThreadCreatedEvent,
    VolumeDeletedEvent,
    VolumeProvisionedEvent,
    WorkloadAllocatedEvent,
    WorkloadReleasedEvent,
)
from api.storage.anchors import BATCH_ORGS, anchored, batch_orgs
from api.storage.db import as_arrays, compile_statement, execute
from api.storage.schema import threshold_marks, thresholds

# The section whose figures an event changes.
SECTION_OF = {
    LlmCallEvent: "llm",
    WorkloadAllocatedEvent: "compute",
    WorkloadReleasedEvent: "compute",
    VolumeProvisionedEvent: "storage",
    VolumeDeletedEvent: "storage",
    ThreadCreatedEvent: "platform",
    MessageSentEvent: "platform",
}

_COLUMNS = ["org_id", "mark_id", "section", "since", "until"]
# The ids are made here: Citus runs an INSERT ... SELECT on the shards only when it computes
# no volatile default (gen_random_uuid()) itself.
_rows = anchored(
    [
        ("org_id", Text()),
        ("mark_id", Uuid()),
        ("section", Text()),
        ("since", DateTime(True)),
        ("until", DateTime(True)),
    ],
    prefix="mark_",
)
_MARK = compile_statement(
    threshold_marks.insert().from_select(_COLUMNS, select(*(_rows.c[name] for name in _COLUMNS)))
)
_WATCHED = compile_statement(
    select(thresholds.c.org_id, thresholds.c.section)
    .distinct()
    .where(thresholds.c.org_id == any_(BATCH_ORGS))
)


def spans(events: Iterable[Event]) -> list[tuple[str, str, datetime, datetime]]:
    """Per organization and section, the earliest and latest time of the events."""
    found: dict[tuple[str, str], tuple[datetime, datetime]] = {}
    for event in events:
        key = (event.subject, SECTION_OF[type(event)])
        earliest, latest = found.get(key, (event.time, event.time))
        found[key] = (min(earliest, event.time), max(latest, event.time))
    return [(*key, earliest, latest) for key, (earliest, latest) in sorted(found.items())]


async def mark(conn: psycopg.AsyncConnection, events: Iterable[Event]) -> None:
    """Marks of the events, for the organizations and sections with thresholds."""
    rows = spans(events)
    if not rows:
        return
    cursor = await execute(conn, _WATCHED, **batch_orgs(row[0] for row in rows))
    watched = {tuple(found) for found in await cursor.fetchall()}
    rows = [(org, uuid4(), *rest) for org, *rest in rows if (org, rest[0]) in watched]
    if rows:
        arrays = as_arrays(rows, [f"mark_{name}" for name in _COLUMNS])
        await execute(conn, _MARK, **arrays, **batch_orgs(row[0] for row in rows))
