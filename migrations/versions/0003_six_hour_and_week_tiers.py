"""six-hour and week tiers for every rollup family

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 12:00:00.000000

Filled from the tiers below them: 6-hour buckets from the hourly rows, weeks (from Monday,
like 7-day buckets) from the daily rows; a reservation change's moment moves to the wider
bucket's start.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LLM = ["input_tokens", "cached_tokens", "output_tokens", "successful_requests", "failed_requests"]
_COUNTED = {
    "llm_totals": ([], _LLM),
    "llm_by_identity": (["identity_kind", "identity_id"], _LLM),
    "llm_by_model": (["model"], _LLM),
    "platform_totals": ([], ["threads_created", "messages_sent"]),
}
_CHANGES = {
    "workload_changes": ([], ["cpu_cores", "memory_bytes"]),
    "workload_changes_by_agent": (["agent_id"], ["cpu_cores", "memory_bytes"]),
    "volume_changes": ([], ["size_bytes"]),
    "volume_changes_by_agent": (["agent_id"], ["size_bytes"]),
}
# new tier → (the tier it is filled from, its width, its origin)
_NEW_TIERS = {
    "6h": ("1h", "6 hours", "1970-01-01T00:00:00Z"),
    "7d": ("1d", "7 days", "1970-01-05T00:00:00Z"),
}


def _create(name: str, dimensions: list[str], measures: list[str], kind: sa.types.TypeEngine):
    op.create_table(
        name,
        sa.Column("org_id", sa.Text(), nullable=False),
        sa.Column("bucket_start", sa.DateTime(timezone=True), nullable=False),
        *(sa.Column(column, sa.Text(), nullable=False) for column in dimensions),
        *(sa.Column(column, kind, nullable=False) for column in measures),
        sa.PrimaryKeyConstraint("org_id", "bucket_start", *dimensions, name=op.f(f"{name}_pkey")),
    )


def upgrade() -> None:
    for tier, (source, width, origin) in _NEW_TIERS.items():
        bucket = f"date_bin('{width}', bucket_start, '{origin}')"
        for family, (dimensions, measures) in _COUNTED.items():
            _create(f"{family}_{tier}", dimensions, measures, sa.BigInteger())
            keys = ", ".join(["org_id", bucket, *dimensions])
            sums = ", ".join(f"sum({measure})" for measure in measures)
            op.execute(
                f"INSERT INTO {family}_{tier} SELECT {keys}, {sums} "
                f"FROM {family}_{source} GROUP BY {keys}"
            )
        for family, (dimensions, rates) in _CHANGES.items():
            measures = [f"{rate}_{part}" for rate in rates for part in ("change", "moment")]
            _create(f"{family}_{tier}", dimensions, measures, sa.Numeric())
            keys = ", ".join(["org_id", bucket, *dimensions])
            sums = ", ".join(
                f"sum({rate}_change), sum({rate}_moment "
                f"+ {rate}_change * extract(epoch FROM bucket_start - {bucket}))"
                for rate in rates
            )
            op.execute(
                f"INSERT INTO {family}_{tier} SELECT {keys}, {sums} "
                f"FROM {family}_{source} GROUP BY {keys}"
            )


def downgrade() -> None:
    for tier in _NEW_TIERS:
        for family in [*_COUNTED, *_CHANGES]:
            op.drop_table(f"{family}_{tier}")
