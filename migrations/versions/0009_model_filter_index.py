"""rollups by identity and model also indexed model first

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28 02:00:00.000000

A model filter reads one model's rows of every identity (the top consumers of a model);
through the primary key (bucket first) it read every model's rows in the window and dropped
the others: the 10M-call org's 30-day consumers of one model read 8 times the rows it kept.
On Citus, CREATE INDEX on a distributed table reaches every shard.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = [f"llm_by_identity_model_{tier}" for tier in ("5m", "1h", "6h", "1d", "7d")]
_COLUMNS = ["org_id", "model", "bucket_start"]


def upgrade() -> None:
    for table in _TABLES:
        op.create_index(f"{table}_key_first_idx", table, _COLUMNS)


def downgrade() -> None:
    for table in _TABLES:
        op.drop_index(f"{table}_key_first_idx", table_name=table)
