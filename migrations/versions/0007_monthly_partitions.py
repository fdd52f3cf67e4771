"""raw events and receipts partitioned by month of event time

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 15:30:00.000000

Each table is rebuilt as a table partitioned by RANGE (time): one partition per month from
its oldest event's to three months ahead, and a default partition; its rows are copied over
and the old table dropped. Receipts gain the event's time (from the raw tables), which joins
every key, as a partitioned table's keys must include its partition key.
"""

from collections.abc import Sequence
from datetime import UTC, date, datetime

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# table → its indexes besides the primary key: (name suffix, columns)
_RAW = {
    "llm_calls": [("org_id_time_idx", "org_id, time")],
    "workload_events": [("org_id_workload_id_time_idx", "org_id, workload_id, time")],
    "volume_events": [("org_id_volume_id_time_idx", "org_id, volume_id, time")],
    "thread_events": [("org_id_time_idx", "org_id, time")],
    "message_events": [("org_id_time_idx", "org_id, time")],
}
_KEY = "org_id, source, event_id"
_MONTHS_AHEAD = 3


def _months(first: date, last: date) -> list[date]:
    months, month = [], date(first.year, first.month, 1)
    while month <= last:
        months.append(month)
        month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    return months


def _partition(table: str, months: list[date]) -> None:
    op.execute(f"CREATE TABLE {table}_default PARTITION OF {table} DEFAULT")
    for month in months:
        after = date(month.year + month.month // 12, month.month % 12 + 1, 1)
        name = f"{table}_y{month.year:04d}m{month.month:02d}"
        bounds = f"FROM ('{month}T00:00:00Z') TO ('{after}T00:00:00Z')"
        op.execute(f"CREATE TABLE {name} PARTITION OF {table} FOR VALUES {bounds}")


def _span(table: str) -> list[date]:
    """From the month of the table's oldest row to three months ahead of now."""
    (oldest,) = op.get_bind().exec_driver_sql(f"SELECT min(time) FROM {table}").one()
    now = datetime.now(UTC)
    ahead = date(
        now.year + (now.month + _MONTHS_AHEAD - 1) // 12,
        (now.month + _MONTHS_AHEAD - 1) % 12 + 1,
        1,
    )
    return _months(min(oldest.date(), now.date()) if oldest else now.date(), ahead)


def upgrade() -> None:
    for table, indexes in _RAW.items():
        op.execute(f"ALTER TABLE {table} RENAME TO {table}_0006")
        op.execute(f"ALTER INDEX {table}_pkey RENAME TO {table}_0006_pkey")
        for suffix, _ in indexes:
            op.execute(f"ALTER INDEX IF EXISTS {table}_{suffix} RENAME TO {table}_0006_{suffix}")
        op.execute(
            f"CREATE TABLE {table} (LIKE {table}_0006 INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
            " PARTITION BY RANGE (time)"
        )
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {table}_pkey PRIMARY KEY ({_KEY}, time)")
        for suffix, columns in indexes:
            op.execute(f"CREATE INDEX {table}_{suffix} ON {table} ({columns})")
        _partition(table, _span(f"{table}_0006"))
        op.execute(f"INSERT INTO {table} SELECT * FROM {table}_0006")
        op.execute(f"DROP TABLE {table}_0006")

    op.execute("ALTER TABLE event_receipts RENAME TO event_receipts_0006")
    op.execute("ALTER INDEX event_receipts_pkey RENAME TO event_receipts_0006_pkey")
    op.execute(
        "CREATE TABLE event_receipts (org_id text NOT NULL, source text NOT NULL,"
        " event_id text NOT NULL, time timestamp with time zone NOT NULL,"
        f" CONSTRAINT event_receipts_pkey PRIMARY KEY ({_KEY}, time)) PARTITION BY RANGE (time)"
    )
    every_event = " UNION ALL ".join(f"SELECT {_KEY}, time FROM {table}" for table in _RAW)
    oldest = min((_span(table)[0] for table in _RAW), default=None)
    _partition("event_receipts", _months(oldest, _span("llm_calls")[-1]))
    # Every receipt has its event in one raw table: the same transaction stored both.
    op.execute(f"INSERT INTO event_receipts {every_event}")
    op.execute("DROP TABLE event_receipts_0006")


def downgrade() -> None:
    for table, indexes in {**_RAW, "event_receipts": []}.items():
        op.execute(f"ALTER TABLE {table} RENAME TO {table}_0007")
        op.execute(f"ALTER INDEX {table}_pkey RENAME TO {table}_0007_pkey")
        for suffix, _ in indexes:
            op.execute(f"ALTER INDEX {table}_{suffix} RENAME TO {table}_0007_{suffix}")
        columns = "org_id, source, event_id" if table == "event_receipts" else "*"
        like = (
            "org_id text NOT NULL, source text NOT NULL, event_id text NOT NULL"
            if table == "event_receipts"
            else f"LIKE {table}_0007 INCLUDING DEFAULTS INCLUDING CONSTRAINTS"
        )
        op.execute(f"CREATE TABLE {table} ({like})")
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {table}_pkey PRIMARY KEY ({_KEY})")
        for suffix, columns_of_index in indexes:
            op.execute(f"CREATE INDEX {table}_{suffix} ON {table} ({columns_of_index})")
        # Events that differ in time alone are one event again: the first one stays.
        op.execute(
            f"INSERT INTO {table} SELECT {columns} FROM {table}_0007"
            " ORDER BY time ON CONFLICT DO NOTHING"
        )
        op.execute(f"DROP TABLE {table}_0007 CASCADE")
