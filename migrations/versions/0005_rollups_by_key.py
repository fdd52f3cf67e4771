"""rollups by identity also indexed identity first

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 14:00:00.000000

An identity filter and the series of the top groups read a few identities among hundreds;
through the primary key (bucket first) they read every identity's rows in the window.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = [
    f"{family}_{tier}"
    for family in ("llm_by_identity", "platform_by_identity")
    for tier in ("5m", "1h", "6h", "1d", "7d")
]
_COLUMNS = ["org_id", "identity_kind", "identity_id", "bucket_start"]


def upgrade() -> None:
    for table in _TABLES:
        op.create_index(f"{table}_key_first_idx", table, _COLUMNS)


def downgrade() -> None:
    for table in _TABLES:
        op.drop_index(f"{table}_key_first_idx", table_name=table)
