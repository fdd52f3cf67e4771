"""thresholds' test webhooks and secret rotation

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 23:00:00.000000

DESIGN §10: a threshold keeps the secret a rotation replaced, and when, to sign with both
for 24 h; the test webhooks sent on request are kept apart from the crossings. The new
table is distributed on Citus like the other thresholds tables; new columns need nothing.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from api.storage import distribution

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("thresholds", sa.Column("previous_secret", sa.Text(), nullable=True))
    op.add_column("thresholds", sa.Column("rotated_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "threshold_tests",
        sa.Column("org_id", sa.Text(), nullable=False),
        sa.Column("threshold_id", sa.Text(), nullable=False),
        sa.Column("webhook_id", sa.Text(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "org_id", "threshold_id", "webhook_id", name=op.f("threshold_tests_pkey")
        ),
    )
    conn = op.get_bind().connection.driver_connection
    if distribution.citus_present(conn):
        distribution.distribute(conn)


def downgrade() -> None:
    op.drop_table("threshold_tests")
    op.drop_column("thresholds", "rotated_at")
    op.drop_column("thresholds", "previous_secret")
