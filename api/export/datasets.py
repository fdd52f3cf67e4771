"""The events datasets (DESIGN §11): each one's Parquet schema, and the values of its raw
table's rows as the exporter reads them.

Columns are the API's names: the envelope (``org``, ``source``, ``id``, ``time``,
``stored_at``), then the event's data flattened (``identity.kind`` → ``identity_kind``,
``agent.id`` → ``agent_id``). Workload and volume events carry their CloudEvents ``type``.
Names are the identity's as known when the file is written: the raw events keep no names
(api.storage.event_rows).

Times are PostgreSQL's own, whole microseconds in UTC, as Arrow's timestamps hold them.
"""

from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa
from sqlalchemy import (
    ColumnElement,
    FromClause,
    Table,
    and_,
    literal,
)

from api.storage.schema import (
    identities,
    llm_calls,
    message_events,
    thread_events,
    volume_events,
    workload_events,
)

MICROS = pa.timestamp("us", tz="UTC")
# A column's value from the raw table (joined to its identity's name).
Value = Callable[[FromClause], ColumnElement]


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: pa.DataType
    value: Value
    nullable: bool = False


def _raw(name: str) -> Value:
    return lambda raw: raw.c[name]


ENVELOPE = (
    Column("org", pa.string(), _raw("org_id")),
    Column("source", pa.string(), _raw("source")),
    Column("id", pa.string(), _raw("event_id")),
    Column("time", MICROS, _raw("time")),
    # NULL for the events stored before the service kept it (migration 0014).
    Column("stored_at", MICROS, _raw("stored_at"), nullable=True),
)
_NAME = Column("", pa.string(), lambda _: identities.c.name, nullable=True)


@dataclass(frozen=True, slots=True, eq=False)
class EventDataset:
    name: str
    raw: Table
    data: tuple[Column, ...]  # the columns after the envelope
    # The identity whose name the rows carry: its kind's column (None: an agent) and id's.
    named_by: tuple[str | None, str]

    @property
    def columns(self) -> tuple[Column, ...]:
        return (*ENVELOPE, *self.data)

    @property
    def schema(self) -> pa.Schema:
        return pa.schema(
            [pa.field(c.name, c.type, nullable=c.nullable) for c in self.columns],
            metadata={"dataset": self.name},
        )

    def values(self) -> list[ColumnElement]:
        """The columns' values, from the raw table joined as ``named`` joins it."""
        return [column.value(self.raw).label(column.name) for column in self.columns]

    def named(self, rows: FromClause) -> FromClause:
        """``rows`` (the raw table, or a join with it) outer-joined to the names of the raw
        rows' identities."""
        raw = self.raw
        kind_column, id_column = self.named_by
        kind = raw.c[kind_column] if kind_column else literal("agent")
        return rows.outerjoin(
            identities,
            and_(
                identities.c.org_id == raw.c.org_id,
                identities.c.kind == kind,
                identities.c.identity_id == raw.c[id_column],
            ),
        )


def _named(name: str) -> Column:
    return Column(name, _NAME.type, _NAME.value, nullable=True)


def _identity() -> tuple[Column, ...]:
    return (
        Column("identity_kind", pa.string(), _raw("identity_kind")),
        Column("identity_id", pa.string(), _raw("identity_id")),
        _named("identity_name"),
    )


def _allocation(prefix: str, object_id: str, sizes: tuple[Column, ...]) -> tuple[Column, ...]:
    """The columns of workload or volume events: released or deleted ones have no agent nor
    sizes (NULL)."""
    return (
        Column("type", pa.string(), lambda raw: literal(f"{prefix}.") + raw.c.action),
        Column(object_id, pa.string(), _raw(object_id)),
        Column("agent_id", pa.string(), _raw("agent_id"), nullable=True),
        _named("agent_name"),
        *sizes,
    )


def _platform(name: str, raw: Table) -> "EventDataset":
    return EventDataset(
        name,
        raw,
        (Column("thread_id", pa.string(), _raw("thread_id")), *_identity()),
        ("identity_kind", "identity_id"),
    )


LLM_CALLS = EventDataset(
    "llm_calls",
    llm_calls,
    (
        *_identity(),
        Column("model", pa.string(), _raw("model")),
        Column("input_tokens", pa.int64(), _raw("input_tokens")),
        Column("cached_tokens", pa.int64(), _raw("cached_tokens")),
        Column("output_tokens", pa.int64(), _raw("output_tokens")),
        Column("succeeded", pa.bool_(), _raw("succeeded")),
    ),
    ("identity_kind", "identity_id"),
)
WORKLOAD_EVENTS = EventDataset(
    "workload_events",
    workload_events,
    _allocation(
        "workload",
        "workload_id",
        (
            Column("cpu_cores", pa.float64(), _raw("cpu_cores"), nullable=True),
            Column("memory_bytes", pa.int64(), _raw("memory_bytes"), nullable=True),
        ),
    ),
    (None, "agent_id"),
)
VOLUME_EVENTS = EventDataset(
    "volume_events",
    volume_events,
    _allocation(
        "volume",
        "volume_id",
        (Column("size_bytes", pa.int64(), _raw("size_bytes"), nullable=True),),
    ),
    (None, "agent_id"),
)
THREADS = _platform("threads", thread_events)
MESSAGES = _platform("messages", message_events)

EVENT_DATASETS = (LLM_CALLS, WORKLOAD_EVENTS, VOLUME_EVENTS, THREADS, MESSAGES)
EVENT_DATASET_NAMED = {dataset.name: dataset for dataset in EVENT_DATASETS}
