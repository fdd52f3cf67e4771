"""The events the exporter has yet to write (api.export): queued by ingest and import in the
transaction that stores them, so the exporter sees an event only with its raw row and
never misses one.

One row per organization and dataset of a batch, its events' keys as arrays: a row a batch
costs ingest next to nothing. Rows are written only while a destination is registered
(``export_state``), which the batch's transaction reads: a server that does not export
itself still queues for the one that does, and a database never exported to keeps no queue.
The exporter, once it registers, waits for the transactions begun before (which may have
read that none was) before it exports what they stored (api.storage.exports).

The registration is read apart from the insert: on Citus a statement that reads the
reference table ``export_state`` beside an organization's rows runs on every shard.
"""

from collections.abc import Iterable
from uuid import uuid4

import psycopg
from sqlalchemy import DateTime, Text, Uuid, exists, func, select

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
from api.storage.anchors import anchored, batch_orgs
from api.storage.db import as_arrays, compile_statement, execute
from api.storage.schema import export_pending, export_state

# The events datasets (DESIGN §11), named as the files' folders are.
DATASET_OF = {
    LlmCallEvent: "llm_calls",
    WorkloadAllocatedEvent: "workload_events",
    WorkloadReleasedEvent: "workload_events",
    VolumeProvisionedEvent: "volume_events",
    VolumeDeletedEvent: "volume_events",
    ThreadCreatedEvent: "threads",
    MessageSentEvent: "messages",
}

# The dataset of each raw table's events.
DATASET_OF_TABLE = {
    "llm_calls": "llm_calls",
    "workload_events": "workload_events",
    "volume_events": "volume_events",
    "thread_events": "threads",
    "message_events": "messages",
}

_COLUMNS = [
    ("org_id", Text()),
    ("queued_id", Uuid()),
    ("dataset", Text()),
    ("source", Text()),
    ("event_id", Text()),
    ("time", DateTime(True)),
]
_events = anchored(_COLUMNS, prefix="export_")
_grouped = select(
    _events.c.org_id,
    _events.c.queued_id,
    _events.c.dataset,
    func.array_agg(_events.c.source).label("sources"),
    func.array_agg(_events.c.event_id).label("event_ids"),
    func.array_agg(_events.c.time).label("times"),
).group_by(_events.c.org_id, _events.c.queued_id, _events.c.dataset)
_REGISTERED = compile_statement(select(exists(select(export_state.c.org_id))))
_QUEUE = compile_statement(
    export_pending.insert().from_select(
        ["org_id", "queued_id", "dataset", "sources", "event_ids", "times"], _grouped
    )
)


async def queue(conn: psycopg.AsyncConnection, events: Iterable[Event]) -> None:
    """The events, queued for export if a destination is registered. The ids are made here:
    Citus runs an INSERT ... SELECT on the shards only when it computes no volatile value."""
    events = list(events)
    if not events or not (await (await execute(conn, _REGISTERED)).fetchone())[0]:
        return
    ids: dict[tuple[str, str], object] = {}
    rows = []
    for event in events:
        group = (event.subject, DATASET_OF[type(event)])
        queued_id = ids.setdefault(group, uuid4())
        rows.append((event.subject, queued_id, group[1], event.source, event.id, event.time))
    arrays = as_arrays(rows, [f"export_{name}" for name, _ in _COLUMNS])
    await execute(conn, _QUEUE, **arrays, **batch_orgs(org for org, _ in ids))
