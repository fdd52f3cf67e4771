"""keys of scope manage: an organization's usage thresholds

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 18:10:00.000000

A manage key belongs to one organization, as a read key does (DESIGN §10). On Citus the
constraint of the reference table api_keys changes on every node.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _scopes(*scopes: str) -> None:
    op.drop_constraint(op.f("api_keys_scope_check"), "api_keys", type_="check")
    listed = ", ".join(f"'{scope}'" for scope in scopes)
    op.create_check_constraint(op.f("api_keys_scope_check"), "api_keys", f"scope IN ({listed})")


def upgrade() -> None:
    _scopes("read", "ingest", "admin", "manage")


def downgrade() -> None:
    op.execute("DELETE FROM api_keys WHERE scope = 'manage'")
    _scopes("read", "ingest", "admin")
