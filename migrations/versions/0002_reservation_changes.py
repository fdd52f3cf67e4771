"""reservation changes: per-tier rollups of workload and volume reservations

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 11:20:00.000000

Fills the new tables from the segments already stored, as ingest would have.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIERS = {"5m": "5 minutes", "1h": "1 hour", "1d": "1 day"}
# segments table → (family prefix, held table, rates)
_KINDS = {
    "workload_segments": ("workload", "workloads_held", ["cpu_cores", "memory_bytes"]),
    "volume_segments": ("volume", "volumes_held", ["size_bytes"]),
}


def _measures(rates: list[str]) -> list[sa.Column]:
    return [
        sa.Column(f"{rate}_{part}", sa.Numeric(), nullable=False)
        for rate in rates
        for part in ("change", "moment")
    ]


def _changes_sql(segments: str, rates: list[str]) -> str:
    """Every segment's changes: +rate at its start, -rate at its end."""
    starts = ", ".join(f"{rate}::numeric AS {rate}" for rate in rates)
    ends = ", ".join(f"-{rate}::numeric AS {rate}" for rate in rates)
    return (
        f"SELECT start_time AS at, org_id, agent_id, {starts} FROM {segments} "
        f"UNION ALL SELECT end_time, org_id, agent_id, {ends} FROM {segments} "
        "WHERE end_time IS NOT NULL"
    )


def upgrade() -> None:
    for segments, (family, held, rates) in _KINDS.items():
        op.create_index(
            op.f(f"{segments}_org_id_start_time_idx"), segments, ["org_id", "start_time"]
        )
        changes = _changes_sql(segments, rates)
        for suffix, dimensions in (("", []), ("_by_agent", ["agent_id"])):
            for tier, width in _TIERS.items():
                name = f"{family}_changes{suffix}_{tier}"
                op.create_table(
                    name,
                    sa.Column("org_id", sa.Text(), nullable=False),
                    sa.Column("bucket_start", sa.DateTime(timezone=True), nullable=False),
                    *(sa.Column(column, sa.Text(), nullable=False) for column in dimensions),
                    *_measures(rates),
                    sa.PrimaryKeyConstraint(
                        "org_id", "bucket_start", *dimensions, name=op.f(f"{name}_pkey")
                    ),
                )
                bucket = f"date_bin('{width}', at, '1970-01-01T00:00:00Z')"
                keys = ", ".join(["org_id", bucket, *dimensions])
                sums = ", ".join(
                    f"sum({rate}), sum({rate} * extract(epoch FROM at - {bucket}))"
                    for rate in rates
                )
                op.execute(
                    f"INSERT INTO {name} SELECT {keys}, {sums} "
                    f"FROM ({changes}) AS c GROUP BY {keys}"
                )
        op.create_table(
            held,
            sa.Column("org_id", sa.Text(), nullable=False),
            sa.Column("agent_id", sa.Text(), nullable=False),
            *(sa.Column(rate, sa.Numeric(), nullable=False) for rate in rates),
            sa.PrimaryKeyConstraint("org_id", "agent_id", name=op.f(f"{held}_pkey")),
        )
        sums = ", ".join(f"sum({rate})" for rate in rates)
        op.execute(
            f"INSERT INTO {held} SELECT org_id, agent_id, {sums} FROM ({changes}) AS c "
            "GROUP BY org_id, agent_id"
        )


def downgrade() -> None:
    for segments, (family, held, _) in _KINDS.items():
        op.drop_table(held)
        for suffix in ("", "_by_agent"):
            for tier in _TIERS:
                op.drop_table(f"{family}_changes{suffix}_{tier}")
        op.drop_index(op.f(f"{segments}_org_id_start_time_idx"), table_name=segments)
