"""export to object storage: when each event was stored, and the exporter's bookkeeping

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 12:00:00.000000

DESIGN §11. The raw tables gain ``stored_at`` (the storing transaction's start; NULL for the
events stored before, whose time of storing nobody kept). The exporter's tables: the queue
of events to export and the organizations' dates to export again (distributed like every
organization's table on Citus), and the destination, files and partitions exported (rows of
no organization: reference tables).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from api.storage import distribution

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_RAW = ["workload_events", "volume_events", "llm_calls", "thread_events", "message_events"]
_EXPORT_TABLES = [
    "export_state",
    "export_pending",
    "export_dirty",
    "export_files",
    "export_partitions",
]


def _time(name: str, *, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _org_id() -> sa.Column:
    return sa.Column("org_id", sa.Text(), nullable=False)


def _pkey(table: str, *columns: str) -> sa.PrimaryKeyConstraint:
    return sa.PrimaryKeyConstraint("org_id", *columns, name=op.f(f"{table}_pkey"))


def upgrade() -> None:
    for table in _RAW:
        # Added without a default, then given one: the rows already stored stay NULL and no
        # partition is rewritten.
        op.add_column(table, _time("stored_at", nullable=True))
        op.alter_column(table, "stored_at", server_default=sa.func.now())
    op.create_table(
        "export_state",
        _org_id(),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column(
            "registered_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.Column("next_job", sa.BigInteger(), server_default=sa.text("1"), nullable=False),
        sa.Column("backfill_from", sa.Date(), nullable=True),
        sa.Column("backfill_next", sa.Date(), nullable=True),
        _pkey("export_state"),
    )
    op.create_table(
        "export_pending",
        _org_id(),
        sa.Column("queued_id", sa.Uuid(), nullable=False),
        sa.Column("dataset", sa.Text(), nullable=False),
        sa.Column("sources", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("event_ids", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("times", postgresql.ARRAY(sa.DateTime(timezone=True)), nullable=False),
        sa.Column(
            "queued_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("job_id", sa.BigInteger(), nullable=True),
        _pkey("export_pending", "queued_id"),
    )
    op.create_table(
        "export_dirty",
        _org_id(),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("marked_id", sa.Uuid(), nullable=False),
        _pkey("export_dirty", "date"),
    )
    op.create_table(
        "export_files",
        _org_id(),
        sa.Column("dataset", sa.Text(), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("job_id", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=True),
        sa.Column("bytes", sa.BigInteger(), nullable=True),
        sa.Column("sha256", sa.Text(), nullable=True),
        sa.Column("orgs", postgresql.ARRAY(sa.Text()), nullable=True),
        sa.CheckConstraint(
            "state IN ('writing', 'listed', 'superseded')", name=op.f("export_files_state_check")
        ),
        _pkey("export_files", "dataset", "date", "name"),
    )
    op.create_table(
        "export_partitions",
        _org_id(),
        sa.Column("dataset", sa.Text(), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        _time("written_at"),
        _pkey("export_partitions", "dataset", "date"),
    )
    conn = op.get_bind().connection.driver_connection
    if distribution.citus_present(conn):
        distribution.distribute(conn)


def downgrade() -> None:
    for table in reversed(_EXPORT_TABLES):
        op.drop_table(table)
    for table in _RAW:
        op.drop_column(table, "stored_at")
