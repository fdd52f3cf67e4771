"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-25 00:16:04.655558
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Rollup families (api/schema.py): one table per tier, keyed by org, bucket, dimensions.
_TIERS = ["5m", "1h", "1d"]
_LLM_MEASURES = [
    "input_tokens",
    "cached_tokens",
    "output_tokens",
    "successful_requests",
    "failed_requests",
]
_ROLLUPS = {
    "llm_totals": ([], _LLM_MEASURES),
    "llm_by_identity": (["identity_kind", "identity_id"], _LLM_MEASURES),
    "llm_by_model": (["model"], _LLM_MEASURES),
    "platform_totals": ([], ["threads_created", "messages_sent"]),
}


def _create_rollups() -> None:
    for family, (dimensions, measures) in _ROLLUPS.items():
        for tier in _TIERS:
            name = f"{family}_{tier}"
            op.create_table(
                name,
                sa.Column("org_id", sa.Text(), nullable=False),
                sa.Column("bucket_start", sa.DateTime(timezone=True), nullable=False),
                *(sa.Column(column, sa.Text(), nullable=False) for column in dimensions),
                *(sa.Column(column, sa.BigInteger(), nullable=False) for column in measures),
                sa.PrimaryKeyConstraint(
                    "org_id", "bucket_start", *dimensions, name=op.f(f"{name}_pkey")
                ),
            )


def upgrade() -> None:
    _create_rollups()
    op.create_table(
        "api_keys",
        sa.Column("org_id", sa.Text(), nullable=False),
        sa.Column("key_id", sa.Text(), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("key_hash", sa.LargeBinary(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "scope IN ('read', 'ingest', 'admin')", name=op.f("api_keys_scope_check")
        ),
        sa.PrimaryKeyConstraint("org_id", "key_id", name=op.f("api_keys_pkey")),
    )
    op.create_index(op.f("api_keys_key_hash_idx"), "api_keys", ["key_hash"], unique=False)
    op.create_table(
        "event_receipts",
        sa.Column("org_id", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("org_id", "source", "event_id", name=op.f("event_receipts_pkey")),
    )
    op.create_table(
        "identities",
        sa.Column("org_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("identity_id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("name_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("name_source", sa.Text(), nullable=True),
        sa.Column("name_event_id", sa.Text(), nullable=True),
        sa.CheckConstraint("kind IN ('agent', 'user')", name=op.f("identities_kind_check")),
        sa.PrimaryKeyConstraint("org_id", "kind", "identity_id", name=op.f("identities_pkey")),
    )
    op.create_table(
        "llm_calls",
        sa.Column("org_id", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("identity_kind", sa.Text(), nullable=False),
        sa.Column("identity_id", sa.Text(), nullable=False),
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("input_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cached_tokens", sa.BigInteger(), nullable=False),
        sa.Column("output_tokens", sa.BigInteger(), nullable=False),
        sa.Column("succeeded", sa.Boolean(), nullable=False),
        sa.CheckConstraint(
            "identity_kind IN ('agent', 'user')", name=op.f("llm_calls_identity_kind_check")
        ),
        sa.PrimaryKeyConstraint("org_id", "source", "event_id", name=op.f("llm_calls_pkey")),
    )
    op.create_index(
        op.f("llm_calls_org_id_time_idx"), "llm_calls", ["org_id", "time"], unique=False
    )
    op.create_table(
        "message_events",
        sa.Column("org_id", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("thread_id", sa.Text(), nullable=False),
        sa.Column("identity_kind", sa.Text(), nullable=False),
        sa.Column("identity_id", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "identity_kind IN ('agent', 'user')", name=op.f("message_events_identity_kind_check")
        ),
        sa.PrimaryKeyConstraint("org_id", "source", "event_id", name=op.f("message_events_pkey")),
    )
    op.create_index(
        op.f("message_events_org_id_time_idx"), "message_events", ["org_id", "time"], unique=False
    )
    op.create_table(
        "orgs",
        sa.Column("org_id", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("org_id", name=op.f("orgs_pkey")),
    )
    op.create_table(
        "thread_events",
        sa.Column("org_id", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("thread_id", sa.Text(), nullable=False),
        sa.Column("identity_kind", sa.Text(), nullable=False),
        sa.Column("identity_id", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "identity_kind IN ('agent', 'user')", name=op.f("thread_events_identity_kind_check")
        ),
        sa.PrimaryKeyConstraint("org_id", "source", "event_id", name=op.f("thread_events_pkey")),
    )
    op.create_index(
        op.f("thread_events_org_id_time_idx"), "thread_events", ["org_id", "time"], unique=False
    )
    op.create_table(
        "volume_events",
        sa.Column("org_id", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("volume_id", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("agent_id", sa.Text(), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(
            "action IN ('provisioned', 'deleted')", name=op.f("volume_events_action_check")
        ),
        sa.PrimaryKeyConstraint("org_id", "source", "event_id", name=op.f("volume_events_pkey")),
    )
    op.create_index(
        op.f("volume_events_org_id_volume_id_idx"),
        "volume_events",
        ["org_id", "volume_id"],
        unique=False,
    )
    op.create_table(
        "volume_segments",
        sa.Column("org_id", sa.Text(), nullable=False),
        sa.Column("volume_id", sa.Text(), nullable=False),
        sa.Column("start_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("agent_id", sa.Text(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "org_id", "volume_id", "start_time", name=op.f("volume_segments_pkey")
        ),
    )
    op.create_index(
        op.f("volume_segments_org_id_end_time_idx"),
        "volume_segments",
        ["org_id", "end_time"],
        unique=False,
    )
    op.create_table(
        "workload_events",
        sa.Column("org_id", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("workload_id", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("agent_id", sa.Text(), nullable=True),
        sa.Column("cpu_cores", sa.Float(), nullable=True),
        sa.Column("memory_bytes", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(
            "action IN ('allocated', 'released')", name=op.f("workload_events_action_check")
        ),
        sa.PrimaryKeyConstraint("org_id", "source", "event_id", name=op.f("workload_events_pkey")),
    )
    op.create_index(
        op.f("workload_events_org_id_workload_id_idx"),
        "workload_events",
        ["org_id", "workload_id"],
        unique=False,
    )
    op.create_table(
        "workload_segments",
        sa.Column("org_id", sa.Text(), nullable=False),
        sa.Column("workload_id", sa.Text(), nullable=False),
        sa.Column("start_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("agent_id", sa.Text(), nullable=False),
        sa.Column("cpu_cores", sa.Float(), nullable=False),
        sa.Column("memory_bytes", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "org_id", "workload_id", "start_time", name=op.f("workload_segments_pkey")
        ),
    )
    op.create_index(
        op.f("workload_segments_org_id_end_time_idx"),
        "workload_segments",
        ["org_id", "end_time"],
        unique=False,
    )


def downgrade() -> None:
    for family in _ROLLUPS:
        for tier in _TIERS:
            op.drop_table(f"{family}_{tier}")
    op.drop_index(op.f("workload_segments_org_id_end_time_idx"), table_name="workload_segments")
    op.drop_table("workload_segments")
    op.drop_index(op.f("workload_events_org_id_workload_id_idx"), table_name="workload_events")
    op.drop_table("workload_events")
    op.drop_index(op.f("volume_segments_org_id_end_time_idx"), table_name="volume_segments")
    op.drop_table("volume_segments")
    op.drop_index(op.f("volume_events_org_id_volume_id_idx"), table_name="volume_events")
    op.drop_table("volume_events")
    op.drop_index(op.f("thread_events_org_id_time_idx"), table_name="thread_events")
    op.drop_table("thread_events")
    op.drop_table("orgs")
    op.drop_index(op.f("message_events_org_id_time_idx"), table_name="message_events")
    op.drop_table("message_events")
    op.drop_index(op.f("llm_calls_org_id_time_idx"), table_name="llm_calls")
    op.drop_table("llm_calls")
    op.drop_table("identities")
    op.drop_table("event_receipts")
    op.drop_index(op.f("api_keys_key_hash_idx"), table_name="api_keys")
    op.drop_table("api_keys")
