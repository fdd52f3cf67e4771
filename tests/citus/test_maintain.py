"""`usage-api maintain` on Citus: a month created on the coordinator, with the rows its default
partition held for it moved in, is a distributed partition of its table, and every row is
still read where it was."""

from datetime import UTC, datetime

from api.storage.db import connect
from api.storage.partitions import month_start, partition_name
from testkit.database import snapshot
from testkit.factories import llm_call, post_events
from testkit.server import UNLIMITED, usage_api


def test_maintain_makes_a_missing_month_a_distributed_partition_with_its_rows(
    client, db, ingest_key
):
    now = datetime.now(UTC)
    month = partition_name("llm_calls", month_start(now))
    with connect(db) as conn:
        conn.execute(f"DROP TABLE {month}")  # as if maintain had not run for months
    events = [llm_call(org=org, time=now) for org in ("acme", "globex", "initech")]
    assert post_events(client, ingest_key, events).status_code == 200
    before = snapshot(db)

    done = usage_api(db, "maintain", **UNLIMITED)
    assert done.returncode == 0, done.stderr
    assert f"created partition {month}" in done.stdout
    assert "moved 3 rows" in done.stdout
    with connect(db) as conn:
        (held,) = conn.execute(f"SELECT count(*) FROM {month}").fetchone()
        distributed = conn.execute(
            "SELECT 1 FROM pg_dist_partition WHERE logicalrelid = %s::regclass", [month]
        ).fetchone()
    assert held == 3 and distributed
    assert snapshot(db) == before
