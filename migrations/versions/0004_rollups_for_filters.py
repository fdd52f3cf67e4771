"""rollups for filters and groups: LLM by identity and model, platform by identity

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 11:10:00.000000

Filled from the raw events already stored, as ingest would have.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# tier → (width, origin): weeks start on Mondays
_TIERS = {
    "5m": ("5 minutes", "1970-01-01T00:00:00Z"),
    "1h": ("1 hour", "1970-01-01T00:00:00Z"),
    "6h": ("6 hours", "1970-01-01T00:00:00Z"),
    "1d": ("1 day", "1970-01-01T00:00:00Z"),
    "7d": ("7 days", "1970-01-05T00:00:00Z"),
}
_IDENTITY = ["identity_kind", "identity_id"]
# family → (dimensions, measure → its sum over the raw rows, the raw rows)
_FAMILIES = {
    "llm_by_identity_model": (
        [*_IDENTITY, "model"],
        {
            "input_tokens": "sum(input_tokens)",
            "cached_tokens": "sum(cached_tokens)",
            "output_tokens": "sum(output_tokens)",
            "successful_requests": "count(*) FILTER (WHERE succeeded)",
            "failed_requests": "count(*) FILTER (WHERE NOT succeeded)",
        },
        "llm_calls",
    ),
    "platform_by_identity": (
        _IDENTITY,
        {"threads_created": "sum(threads)", "messages_sent": "sum(messages)"},
        "(SELECT org_id, time, identity_kind, identity_id, 1 AS threads, 0 AS messages "
        "FROM thread_events UNION ALL "
        "SELECT org_id, time, identity_kind, identity_id, 0, 1 FROM message_events) AS events",
    ),
}


def upgrade() -> None:
    for family, (dimensions, sums, rows) in _FAMILIES.items():
        for tier, (width, origin) in _TIERS.items():
            name = f"{family}_{tier}"
            op.create_table(
                name,
                sa.Column("org_id", sa.Text(), nullable=False),
                sa.Column("bucket_start", sa.DateTime(timezone=True), nullable=False),
                *(sa.Column(column, sa.Text(), nullable=False) for column in dimensions),
                *(sa.Column(column, sa.BigInteger(), nullable=False) for column in sums),
                sa.PrimaryKeyConstraint(
                    "org_id", "bucket_start", *dimensions, name=op.f(f"{name}_pkey")
                ),
            )
            keys = ", ".join(["org_id", f"date_bin('{width}', time, '{origin}')", *dimensions])
            op.execute(
                f"INSERT INTO {name} SELECT {keys}, {', '.join(sums.values())} "
                f"FROM {rows} GROUP BY {keys}"
            )


def downgrade() -> None:
    for family in _FAMILIES:
        for tier in _TIERS:
            op.drop_table(f"{family}_{tier}")
