"""workload and volume events indexed by object and time

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 15:00:00.000000

A new event rebuilds only its object's segments around it: the events just before and after
it are found through the index, not by reading all of the object's events.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OBJECTS = {"workload_events": "workload_id", "volume_events": "volume_id"}


def upgrade() -> None:
    for table, column in _OBJECTS.items():
        op.create_index(
            op.f(f"{table}_org_id_{column}_time_idx"), table, ["org_id", column, "time"]
        )
        op.drop_index(op.f(f"{table}_org_id_{column}_idx"), table_name=table)


def downgrade() -> None:
    for table, column in _OBJECTS.items():
        op.create_index(op.f(f"{table}_org_id_{column}_idx"), table, ["org_id", column])
        op.drop_index(op.f(f"{table}_org_id_{column}_time_idx"), table_name=table)
