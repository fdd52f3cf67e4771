"""Allocations on a large database whose statistics know nothing of the organization
sending: the shape that stalled `make bench`'s mixed ingest (issue 34).

A big organization's segments, then statistics taken (ANALYZE), then a new organization's
allocations arriving out of time order. Autoanalyze is off on the segments' tables for the
test, as it is in effect on a large database (10% of its rows must change first), so the
planner keeps believing the new organization holds no segment while it gains thousands. A
statement whose plan depends on that belief (the segments to clear found by a join the
planner may turn around) degenerates into a scan of the organization's segments per region:
batches of 1,000 took a minute on the bench's data. Named by key, each batch's cost is its
regions', whatever the statistics say.
"""

import time
from datetime import timedelta

import psycopg
import pytest

from testkit.factories import BASE_TIME, post_events
from testkit.traffic import Events

BIG_ORG_SEGMENTS = 200_000
BATCHES = 12
BATCH = 1_000
# Well-planned, a batch here takes a few tenths of a second; degenerate, the last ones take
# tens of seconds (a scan of the new organization's segments per region). The bound leaves
# a loaded machine ample room.
BOUND_SECONDS = 8.0
SEGMENT_TABLES = ("workload_segments", "volume_segments")


@pytest.fixture
def big_org_analyzed(db: str):
    """The big organization's segments, written directly, and the tables analyzed with
    autoanalyze off until the test ends."""
    with psycopg.connect(db, autocommit=True) as conn:
        for table, object_column, sizes in (
            ("workload_segments", "workload_id", "cpu_cores, memory_bytes"),
            ("volume_segments", "volume_id", "size_bytes"),
        ):
            values = "1.0, 1073741824" if table == "workload_segments" else "1073741824"
            conn.execute(
                f"INSERT INTO {table} (org_id, {object_column}, start_time, end_time,"
                f" agent_id, {sizes})"
                " SELECT 'big', 'o-' || (n %% 1000), t, t + interval '1 minute', 'agt', "
                f"{values} FROM generate_series(1, %s) AS n,"
                " LATERAL (SELECT %s::timestamptz - n * interval '1 minute' AS t) AS at",
                (BIG_ORG_SEGMENTS, BASE_TIME),
            )
            conn.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = off)")
            conn.execute(f"ANALYZE {table}")
    yield
    with psycopg.connect(db, autocommit=True) as conn:
        for table in SEGMENT_TABLES:
            conn.execute(f"ALTER TABLE {table} RESET (autovacuum_enabled)")


def test_a_new_organizations_allocations_stay_fast_whatever_the_statistics(
    client, big_org_analyzed, ingest_key
):
    # The load test's mix (60% LLM calls, then workloads, volumes, threads, messages) for
    # one organization, at random times of the last day, as make bench sends it.
    mix = Events(
        34, ["newcomer"], lambda rng: BASE_TIME - timedelta(seconds=rng.uniform(0, 86_400))
    )
    slowest = 0.0
    for _ in range(BATCHES):
        events = [mix.next() for _ in range(BATCH)]
        started = time.perf_counter()
        response = post_events(client, ingest_key, events)
        slowest = max(slowest, time.perf_counter() - started)
        assert response.status_code == 200, response.text
        assert response.json()["accepted"] == BATCH
    assert slowest < BOUND_SECONDS, f"a batch of {BATCH} allocations took {slowest:.1f} s"
