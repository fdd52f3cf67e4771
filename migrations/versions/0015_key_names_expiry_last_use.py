"""API keys' names, expiry and last use

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 22:00:00.000000

DESIGN §13: a key may have a name and an expiry; when it was last used is kept to the
minute. api_keys is a reference table on Citus: the columns are added on every node.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = ("name", "expires_at", "last_used_at")


def upgrade() -> None:
    op.add_column("api_keys", sa.Column("name", sa.Text(), nullable=True))
    op.add_column("api_keys", sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("api_keys", sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    for column in reversed(_COLUMNS):
        op.drop_column("api_keys", column)
