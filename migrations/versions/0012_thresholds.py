"""usage thresholds, their crossings and delivery attempts

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 18:30:00.000000

DESIGN §10. Keyed by organization first like every table; on Citus distributed like the rest.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from api.storage import distribution

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _time(name: str, *, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "thresholds",
        sa.Column("org_id", sa.Text(), nullable=False),
        sa.Column("threshold_id", sa.Text(), nullable=False),
        sa.Column("section", sa.Text(), nullable=False),
        sa.Column("measure", sa.Text(), nullable=False),
        sa.Column("period", sa.Text(), nullable=False),
        sa.Column("tz", sa.Text(), nullable=False),
        sa.Column("limit", sa.Float(), nullable=False),
        sa.Column(
            "filters",
            postgresql.JSONB(),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        _time("recheck_at", nullable=True),
        sa.CheckConstraint(
            "period IN ('day', 'week', 'month')", name=op.f("thresholds_period_check")
        ),
        sa.CheckConstraint('"limit" > 0', name=op.f("thresholds_limit_check")),
        sa.PrimaryKeyConstraint("org_id", "threshold_id", name=op.f("thresholds_pkey")),
    )
    op.create_index(
        op.f("thresholds_recheck_at_idx"),
        "thresholds",
        ["recheck_at"],
        postgresql_where=sa.text("recheck_at IS NOT NULL"),
    )
    op.create_table(
        "threshold_marks",
        sa.Column("org_id", sa.Text(), nullable=False),
        sa.Column("mark_id", sa.Uuid(), nullable=False),
        sa.Column("section", sa.Text(), nullable=False),
        _time("since"),
        _time("until"),
        sa.PrimaryKeyConstraint("org_id", "mark_id", name=op.f("threshold_marks_pkey")),
    )
    op.create_table(
        "threshold_crossings",
        sa.Column("org_id", sa.Text(), nullable=False),
        sa.Column("threshold_id", sa.Text(), nullable=False),
        _time("period_start"),
        _time("period_end"),
        sa.Column("value", sa.Float(), nullable=False),
        _time("detected_at"),
        sa.Column("webhook_id", sa.Text(), nullable=False),
        _time("delivered_at", nullable=True),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        _time("next_attempt_at", nullable=True),
        sa.PrimaryKeyConstraint(
            "org_id", "threshold_id", "period_start", name=op.f("threshold_crossings_pkey")
        ),
    )
    op.create_index(
        op.f("threshold_crossings_next_attempt_at_idx"),
        "threshold_crossings",
        ["next_attempt_at"],
        postgresql_where=sa.text("next_attempt_at IS NOT NULL"),
    )
    op.create_table(
        "threshold_deliveries",
        sa.Column("org_id", sa.Text(), nullable=False),
        sa.Column("threshold_id", sa.Text(), nullable=False),
        _time("period_start"),
        sa.Column("attempt", sa.Integer(), nullable=False),
        _time("attempted_at"),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint(
            "org_id",
            "threshold_id",
            "period_start",
            "attempt",
            name=op.f("threshold_deliveries_pkey"),
        ),
    )
    conn = op.get_bind().connection.driver_connection
    if distribution.citus_present(conn):
        distribution.distribute(conn)


def downgrade() -> None:
    for table in (
        "threshold_deliveries",
        "threshold_crossings",
        "threshold_marks",
        "thresholds",
    ):
        op.drop_table(table)
