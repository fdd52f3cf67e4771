"""The database schema: every table the service reads or writes.

Every table carries ``org_id`` and every primary and unique key starts with it, so the
schema can be distributed by organization (Citus, distribution column ``org_id``).
Alembic's migrations under ``migrations/`` build exactly this metadata.

Tables (tests/test_schema.py keeps this list equal to the metadata):

- api_keys, event_receipts, identities, llm_calls, llm_calls_pending, message_events,
  message_events_pending, orgs, thread_events, thread_events_pending, volume_events,
  volume_segments, volumes_held, workload_events, workload_segments, workloads_held
- threshold_crossings, threshold_deliveries, threshold_marks, threshold_tests, thresholds
- export_dirty, export_files, export_partitions, export_pending, export_state
- llm_by_identity: llm_by_identity_1d, llm_by_identity_1h, llm_by_identity_5m,
  llm_by_identity_6h, llm_by_identity_7d
- llm_by_identity_model: llm_by_identity_model_1d, llm_by_identity_model_1h,
  llm_by_identity_model_5m, llm_by_identity_model_6h, llm_by_identity_model_7d
- llm_by_model: llm_by_model_1d, llm_by_model_1h, llm_by_model_5m, llm_by_model_6h,
  llm_by_model_7d
- llm_totals: llm_totals_1d, llm_totals_1h, llm_totals_5m, llm_totals_6h, llm_totals_7d
- platform_by_identity: platform_by_identity_1d, platform_by_identity_1h,
  platform_by_identity_5m, platform_by_identity_6h, platform_by_identity_7d
- platform_totals: platform_totals_1d, platform_totals_1h, platform_totals_5m,
  platform_totals_6h, platform_totals_7d
- volume_changes: volume_changes_1d, volume_changes_1h, volume_changes_5m,
  volume_changes_6h, volume_changes_7d
- volume_changes_by_agent: volume_changes_by_agent_1d, volume_changes_by_agent_1h,
  volume_changes_by_agent_5m, volume_changes_by_agent_6h, volume_changes_by_agent_7d
- workload_changes: workload_changes_1d, workload_changes_1h, workload_changes_5m,
  workload_changes_6h, workload_changes_7d
- workload_changes_by_agent: workload_changes_by_agent_1d, workload_changes_by_agent_1h,
  workload_changes_by_agent_5m, workload_changes_by_agent_6h, workload_changes_by_agent_7d
"""

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    Table,
    Text,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from api.core.tiers import TIERS

metadata = MetaData(
    naming_convention={
        "pk": "%(table_name)s_pkey",
        "ix": "%(table_name)s_%(column_0_N_name)s_idx",
        "ck": "%(table_name)s_%(constraint_name)s_check",
    }
)

# Keys of scope ingest and admin are not bound to one organization; they are stored under
# this org_id, which no slug can equal.
ALL_ORGS = "*"


def _org_id() -> Column:
    return Column("org_id", Text, primary_key=True)


def _timestamp(name: str, *, nullable: bool = False) -> Column:
    return Column(name, DateTime(timezone=True), nullable=nullable)


# The raw events are partitioned by month of event time (api.storage.partitions): after the
# raw retention a month is dropped whole. A partitioned table's keys include its partition
# key, so the raw tables' keys include the time; the receipts hold the dedupe key itself.
PARTITIONED = {"postgresql_partition_by": "RANGE (time)"}


def _dedupe_key() -> list[Column]:
    """(subject, source, id): an event, whatever its time or data."""
    return [
        _org_id(),
        Column("source", Text, primary_key=True),
        Column("event_id", Text, primary_key=True),
    ]


def _event_columns() -> list[Column]:
    """The columns every raw event table starts with: the key, then when the event was
    stored (the transaction's start; NULL for events stored before migration 0014)."""
    return [
        *_dedupe_key(),
        Column("time", DateTime(timezone=True), primary_key=True),
        Column("stored_at", DateTime(timezone=True), server_default=func.now()),
    ]


def _identity_kind_check(column: str) -> CheckConstraint:
    return CheckConstraint(f"{column} IN ('agent', 'user')", name=column)


orgs = Table(
    "orgs",
    metadata,
    _org_id(),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Agents and users; an agent of a workload or volume is the identity of kind 'agent' with
# the same id. The name is the one on the latest event (by time, then source and event id)
# that carried a name.
identities = Table(
    "identities",
    metadata,
    _org_id(),
    Column("kind", Text, primary_key=True),
    Column("identity_id", Text, primary_key=True),
    Column("name", Text),
    _timestamp("name_time", nullable=True),
    Column("name_source", Text),
    Column("name_event_id", Text),
    _identity_kind_check("kind"),
)

api_keys = Table(
    "api_keys",
    metadata,
    _org_id(),
    Column("key_id", Text, primary_key=True),
    Column("scope", Text, nullable=False),
    Column("key_hash", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    _timestamp("revoked_at", nullable=True),
    Column("name", Text, nullable=True),
    _timestamp("expires_at", nullable=True),
    _timestamp("last_used_at", nullable=True),  # to the minute
    CheckConstraint("scope IN ('read', 'ingest', 'admin', 'manage')", name="scope"),
    Index(None, "key_hash"),
)

# One row per event stored (within the raw retention), whatever its type: the dedupe is on
# (subject, source, id) across all types and times, so it lives neither in the per-type
# tables nor in a table partitioned by time, whose unique keys must include the time. The
# event's time is kept for the retention, which deletes by it (api.storage.partitions)
# through a BRIN index: receipts arrive roughly in time order, and keeping it costs an
# insert next to nothing.
event_receipts = Table(
    "event_receipts",
    metadata,
    *_dedupe_key(),
    _timestamp("time"),
    Index(None, "time", postgresql_using="brin"),
)

llm_calls = Table(
    "llm_calls",
    metadata,
    *_event_columns(),
    Column("identity_kind", Text, nullable=False),
    Column("identity_id", Text, nullable=False),
    Column("model", Text, nullable=False),
    Column("input_tokens", BigInteger, nullable=False),
    Column("cached_tokens", BigInteger, nullable=False),
    Column("output_tokens", BigInteger, nullable=False),
    Column("succeeded", Boolean, nullable=False),
    _identity_kind_check("identity_kind"),
    Index(None, "org_id", "time"),
    **PARTITIONED,
)

workload_events = Table(
    "workload_events",
    metadata,
    *_event_columns(),
    Column("workload_id", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("agent_id", Text),
    Column("cpu_cores", Float),
    Column("memory_bytes", BigInteger),
    CheckConstraint("action IN ('allocated', 'released')", name="action"),
    Index(None, "org_id", "workload_id", "time"),  # an object's events in time order
    **PARTITIONED,
)

volume_events = Table(
    "volume_events",
    metadata,
    *_event_columns(),
    Column("volume_id", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("agent_id", Text),
    Column("size_bytes", BigInteger),
    CheckConstraint("action IN ('provisioned', 'deleted')", name="action"),
    Index(None, "org_id", "volume_id", "time"),
    **PARTITIONED,
)


def _platform_event_table(name: str) -> Table:
    return Table(
        name,
        metadata,
        *_event_columns(),
        Column("thread_id", Text, nullable=False),
        Column("identity_kind", Text, nullable=False),
        Column("identity_id", Text, nullable=False),
        _identity_kind_check("identity_kind"),
        Index(None, "org_id", "time"),
        **PARTITIONED,
    )


thread_events = _platform_event_table("thread_events")
message_events = _platform_event_table("message_events")
# In the order ingest writes them (api.storage.rebuild locks them so).
RAW_TABLES = (workload_events, volume_events, llm_calls, thread_events, message_events)

# The write path's queue (api.storage.folding): an LLM call's or platform event's row waits
# in ``{raw table}_pending`` from the transaction that stored it until the folder counts it
# into the rollups, in the transaction that deletes it here; reads add an organization's
# pending rows to its rollups. Only the columns the rollups count, keyed by organization and
# time first: a read's range scan and the folder's take of an organization use the key.


def _pending(raw: Table, counted: list[str]) -> Table:
    columns = [raw.c[name] for name in ("org_id", "time", "source", "event_id", *counted)]
    return Table(
        f"{raw.name}_pending",
        metadata,
        *(Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable) for c in columns),
        Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


# Derived tables, maintained by ingest in the same transaction as the raw rows, or (the
# rollups of LLM calls and platform events) by the folder.

# Rollups: per organization, counts per bucket of each tier (api.core.tiers: 5 minutes, hours,
# 6 hours, days, weeks), in families by what they break down. Every row sums the events whose
# time falls in its bucket; a query reads whole buckets and the raw events at its edges.

LLM_MEASURES = [
    "input_tokens",
    "cached_tokens",
    "output_tokens",
    "successful_requests",
    "failed_requests",
]
PLATFORM_MEASURES = ["threads_created", "messages_sent"]


def _rollup(
    family: str,
    dimensions: list[str],
    measures: list[str],
    kind: type = BigInteger,
    *,
    read_by: tuple[str, ...] = (),
) -> dict[str, Table]:
    """One table per tier: ``{family}_{tier}``, keyed by organization, bucket, dimensions.
    ``read_by``: also indexed by organization, those dimensions, bucket, for the reads of a
    few keys among hundreds (a filter, the series of the top groups) that would otherwise
    read every key's rows in the window."""
    key_first = ("org_id", *read_by, "bucket_start")
    return {
        tier: Table(
            f"{family}_{tier}",
            metadata,
            _org_id(),
            Column("bucket_start", DateTime(timezone=True), primary_key=True),
            *(Column(name, Text, primary_key=True) for name in dimensions),
            *(Column(name, kind, nullable=False) for name in measures),
            *([Index(f"{family}_{tier}_key_first_idx", *key_first)] if read_by else []),
        )
        for tier in TIERS
    }


_IDENTITY = ("identity_kind", "identity_id")
llm_totals = _rollup("llm_totals", [], LLM_MEASURES)
llm_by_identity = _rollup("llm_by_identity", [*_IDENTITY], LLM_MEASURES, read_by=_IDENTITY)
llm_by_model = _rollup("llm_by_model", ["model"], LLM_MEASURES)
# Both at once: what filters by one and breaks down (or groups) by the other read. A model
# filter reads one model's rows of every identity (the consumers of that model).
llm_by_identity_model = _rollup(
    "llm_by_identity_model", [*_IDENTITY, "model"], LLM_MEASURES, read_by=("model",)
)
platform_totals = _rollup("platform_totals", [], PLATFORM_MEASURES)
platform_by_identity = _rollup(
    "platform_by_identity", [*_IDENTITY], PLATFORM_MEASURES, read_by=_IDENTITY
)

# A segment is one stretch of constant reservation: [start_time, end_time), end_time NULL
# while the reservation still holds (it then counts up to a query's as_of). Zero-length
# stretches are not stored, so start_time is unique per object.
workload_segments = Table(
    "workload_segments",
    metadata,
    _org_id(),
    Column("workload_id", Text, primary_key=True),
    Column("start_time", DateTime(timezone=True), primary_key=True),
    _timestamp("end_time", nullable=True),
    Column("agent_id", Text, nullable=False),
    Column("cpu_cores", Float, nullable=False),
    Column("memory_bytes", BigInteger, nullable=False),
    # A window's edges read the segments starting and ending in them.
    Index(None, "org_id", "start_time"),
    Index(None, "org_id", "end_time"),
)

volume_segments = Table(
    "volume_segments",
    metadata,
    _org_id(),
    Column("volume_id", Text, primary_key=True),
    Column("start_time", DateTime(timezone=True), primary_key=True),
    _timestamp("end_time", nullable=True),
    Column("agent_id", Text, nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    # A window's edges read the segments starting and ending in them.
    Index(None, "org_id", "start_time"),
    Index(None, "org_id", "end_time"),
)

# Reservation changes: each segment changes its agent's reservation by +rate at its start
# and -rate at its end. Per tier and bucket, ``{rate}_change`` sums the changes and
# ``{rate}_moment`` sums each change times its seconds after the bucket start; with the
# reservations held now (``*_held``), that integrates any window exactly from whole buckets
# and the segments at its edges (api.reads.allocated). Numeric: changes cancel exactly.
WORKLOAD_RATES = ["cpu_cores", "memory_bytes"]
VOLUME_RATES = ["size_bytes"]


def _changes(family: str, dimensions: list[str], rates: list[str]) -> dict[str, Table]:
    measures = [f"{rate}_{part}" for rate in rates for part in ("change", "moment")]
    return _rollup(family, dimensions, measures, Numeric)


def _held(name: str, rates: list[str]) -> Table:
    """Per agent, the sum of every change: what its open segments reserve now."""
    return Table(
        name,
        metadata,
        _org_id(),
        Column("agent_id", Text, primary_key=True),
        *(Column(rate, Numeric, nullable=False) for rate in rates),
    )


workload_changes = _changes("workload_changes", [], WORKLOAD_RATES)
workload_changes_by_agent = _changes("workload_changes_by_agent", ["agent_id"], WORKLOAD_RATES)
workloads_held = _held("workloads_held", WORKLOAD_RATES)
volume_changes = _changes("volume_changes", [], VOLUME_RATES)
volume_changes_by_agent = _changes("volume_changes_by_agent", ["agent_id"], VOLUME_RATES)
volumes_held = _held("volumes_held", VOLUME_RATES)

_COUNTED_IDENTITY = ["identity_kind", "identity_id"]
llm_calls_pending = _pending(
    llm_calls,
    [*_COUNTED_IDENTITY, "model", "input_tokens", "cached_tokens", "output_tokens", "succeeded"],
)
thread_events_pending = _pending(thread_events, _COUNTED_IDENTITY)
message_events_pending = _pending(message_events, _COUNTED_IDENTITY)


# Usage thresholds (DESIGN §10): what to watch and where to tell; each crossing, recorded once
# per threshold and period; each attempt to deliver one.
thresholds = Table(
    "thresholds",
    metadata,
    _org_id(),
    Column("threshold_id", Text, primary_key=True),
    Column("section", Text, nullable=False),
    Column("measure", Text, nullable=False),
    Column("period", Text, nullable=False),
    Column("tz", Text, nullable=False),
    Column("limit", Float, nullable=False),
    Column("filters", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("url", Text, nullable=False),
    Column("secret", Text, nullable=False),
    # The secret a rotation replaced, which webhooks are signed with too for a while after
    # (api.core.signatures.signing_secrets), so receivers switch without missing one.
    Column("previous_secret", Text, nullable=True),
    _timestamp("rotated_at", nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # When the evaluator must look again without a new event (api.storage.evaluation): at
    # creation, and when an allocation held now will carry the period over the limit.
    _timestamp("recheck_at", nullable=True),
    CheckConstraint("period IN ('day', 'week', 'month')", name="period"),
    CheckConstraint('"limit" > 0', name="limit"),
    Index(None, "recheck_at", postgresql_where=text("recheck_at IS NOT NULL")),
)

# What changed since the evaluator last looked: left by ingest, in the batch's transaction,
# for an organization with thresholds on the section (api.storage.marks).
threshold_marks = Table(
    "threshold_marks",
    metadata,
    _org_id(),
    Column("mark_id", Uuid, primary_key=True),
    Column("section", Text, nullable=False),
    _timestamp("since"),  # the earliest and latest time of the batch's events
    _timestamp("until"),
)

threshold_crossings = Table(
    "threshold_crossings",
    metadata,
    _org_id(),
    Column("threshold_id", Text, primary_key=True),
    Column("period_start", DateTime(timezone=True), primary_key=True),
    _timestamp("period_end"),
    Column("value", Float, nullable=False),
    _timestamp("detected_at"),
    # The webhook-id of every attempt to deliver it: receivers dedupe on it.
    Column("webhook_id", Text, nullable=False),
    _timestamp("delivered_at", nullable=True),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    _timestamp("next_attempt_at", nullable=True),  # None once delivered or given up
    Index(None, "next_attempt_at", postgresql_where=text("next_attempt_at IS NOT NULL")),
)

threshold_deliveries = Table(
    "threshold_deliveries",
    metadata,
    _org_id(),
    Column("threshold_id", Text, primary_key=True),
    Column("period_start", DateTime(timezone=True), primary_key=True),
    Column("attempt", Integer, primary_key=True),
    _timestamp("attempted_at"),
    Column("status", Integer, nullable=True),  # the receiver's HTTP status, if it answered
    Column("error", Text, nullable=True),  # why not, if it did not
)

# Test webhooks sent on request: listed with the deliveries, never crossings. The latest few
# of a threshold are kept (api.storage.thresholds.TESTS_KEPT).
threshold_tests = Table(
    "threshold_tests",
    metadata,
    _org_id(),
    Column("threshold_id", Text, primary_key=True),
    Column("webhook_id", Text, primary_key=True),
    _timestamp("sent_at"),
    Column("status", Integer, nullable=True),
    Column("error", Text, nullable=True),
    Column("duration_ms", Integer, nullable=False),
)


# Export to object storage (DESIGN §11, api.export). The tables of the exporter's own
# bookkeeping hold no organization's data: their rows are under ALL_ORGS (on Citus, reference
# tables). The destination exported to, and the backfill under way (from which date, and up
# to which one it is done).
export_state = Table(
    "export_state",
    metadata,
    _org_id(),
    Column("url", Text, nullable=False),
    Column("registered_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("next_job", BigInteger, nullable=False, server_default=text("1")),
    Column("backfill_from", Date),
    Column("backfill_next", Date),
)

# The events stored and not yet exported: one row per organization, dataset and transaction,
# their keys as arrays (a row costs ingest next to nothing), written only while a destination
# is registered. A pass of the exporter tags the rows it exports with its job, writes their
# files and deletes them once the files are listed.
export_pending = Table(
    "export_pending",
    metadata,
    _org_id(),
    Column("queued_id", Uuid, primary_key=True),
    Column("dataset", Text, nullable=False),
    Column("sources", ARRAY(Text), nullable=False),
    Column("event_ids", ARRAY(Text), nullable=False),
    Column("times", ARRAY(DateTime(timezone=True)), nullable=False),
    Column("queued_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("job_id", BigInteger),
)

# The organizations' dates whose hourly figures may have changed since they were exported
# (late events, import, rebuild); ``marked_id`` changes at each mark, so that a mark made
# while the exporter writes the date survives the delete of the marks it read.
export_dirty = Table(
    "export_dirty",
    metadata,
    _org_id(),
    Column("date", Date, primary_key=True),
    Column("marked_id", Uuid, nullable=False),
)

# Every file of the destination: ``writing`` from before its PUT until its partition's
# manifest lists it (then ``listed``), ``superseded`` from a backfill's manifest until the
# object is deleted. A part of usage_hourly holds whole organizations (``orgs``).
export_files = Table(
    "export_files",
    metadata,
    _org_id(),
    Column("dataset", Text, primary_key=True),
    Column("date", Date, primary_key=True),
    Column("name", Text, primary_key=True),
    Column("job_id", BigInteger, nullable=False),
    Column("state", Text, nullable=False),
    Column("rows", BigInteger),
    Column("bytes", BigInteger),
    Column("sha256", Text),
    Column("orgs", ARRAY(Text)),
    CheckConstraint("state IN ('writing', 'listed', 'superseded')", name="state"),
)

# Each partition's manifest as last written: its generation grows on every rewrite.
export_partitions = Table(
    "export_partitions",
    metadata,
    _org_id(),
    Column("dataset", Text, primary_key=True),
    Column("date", Date, primary_key=True),
    Column("generation", BigInteger, nullable=False),
    Column("written_at", DateTime(timezone=True), nullable=False),
)

# Tables of no organization: on Citus, reference tables (a copy on every node).
NOT_ORG_TABLES = (api_keys, export_state, export_files, export_partitions)
