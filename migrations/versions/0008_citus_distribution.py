"""every table placed on Citus where the citus extension exists

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27 20:00:00.000000

On a database with the ``citus`` extension, each org-keyed table becomes a distributed table
on org_id, co-located with orgs, and api_keys a reference table (api.storage.distribution).
On plain PostgreSQL nothing changes: the tables stay plain.
"""

from collections.abc import Sequence

from alembic import op

from api.storage import distribution

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _connection():
    """psycopg's connection under Alembic's, inside its transaction."""
    return op.get_bind().connection.driver_connection


def upgrade() -> None:
    conn = _connection()
    if distribution.citus_present(conn):
        distribution.distribute(conn)


def downgrade() -> None:
    conn = _connection()
    if distribution.citus_present(conn):
        placed = distribution.placed(conn)
        # orgs last: the others are co-located with it.
        for placement in reversed(distribution.PLACEMENTS):
            if placement.table in placed:
                conn.execute("SELECT undistribute_table(%s)", [placement.table])
