"""the write path's queue: LLM calls and platform events pending their rollups

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 13:30:00.000000

Ingest stores the raw rows and a copy of each new LLM call's and platform event's counted
columns in ``{raw table}_pending``; the folder (api.storage.folding) counts them into the
rollups and deletes them in one transaction. The rollups are complete when this runs (ingest
kept them), so the queue starts empty. On Citus the new tables are distributed like the rest.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from api.storage import distribution

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COUNTED = {
    "llm_calls_pending": lambda: [
        *_identity(),
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("input_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cached_tokens", sa.BigInteger(), nullable=False),
        sa.Column("output_tokens", sa.BigInteger(), nullable=False),
        sa.Column("succeeded", sa.Boolean(), nullable=False),
    ],
    "thread_events_pending": lambda: _identity(),
    "message_events_pending": lambda: _identity(),
}


def _identity() -> list[sa.Column]:
    return [
        sa.Column("identity_kind", sa.Text(), nullable=False),
        sa.Column("identity_id", sa.Text(), nullable=False),
    ]


def upgrade() -> None:
    for table, counted in _COUNTED.items():
        op.create_table(
            table,
            sa.Column("org_id", sa.Text(), nullable=False),
            sa.Column("time", sa.DateTime(timezone=True), nullable=False),
            sa.Column("source", sa.Text(), nullable=False),
            sa.Column("event_id", sa.Text(), nullable=False),
            *counted(),
            sa.Column(
                "received_at",
                sa.DateTime(timezone=True),
                server_default=sa.text("now()"),
                nullable=False,
            ),
            sa.PrimaryKeyConstraint("org_id", "time", "source", "event_id", name=f"{table}_pkey"),
        )
    conn = op.get_bind().connection.driver_connection
    if distribution.citus_present(conn):
        distribution.distribute(conn)


def downgrade() -> None:
    for table in reversed(_COUNTED):
        op.drop_table(table)
