"""A third worker added and the shards rebalanced onto it while ingest runs: no change to the
service, no acknowledged event lost or doubled, every figure the oracle's. On its own
cluster (it grows by a node)."""

import tempfile
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from api.dev.citus_cluster import CitusCluster
from api.storage import migrations
from api.storage.keys import Scope, create_key
from testkit import faults
from testkit.database import rows, with_connection
from testkit.factories import BASE_TIME, post_events
from testkit.server import UNLIMITED, running_server
from testkit.traffic import Events, verify

ORGS = [f"org-{n}" for n in range(8)]
HOURS = 6


@pytest.fixture
def cluster() -> Iterator[CitusCluster]:
    citus = CitusCluster(Path(tempfile.mkdtemp(prefix="usage-citus-rebalance-")), first_port=5601)
    citus.start()
    migrations.upgrade(citus.url)
    yield citus
    citus.remove()


def _placements(cluster: CitusCluster) -> dict[int, int]:
    """Shards of orgs per worker port."""
    found = cluster.coordinator.psql(
        "SELECT nodeport, count(*) FROM pg_dist_shard_placement JOIN pg_dist_shard"
        " USING (shardid) WHERE logicalrelid = 'orgs'::regclass GROUP BY nodeport"
    )
    return {int(port): int(count) for port, count in (line.split("|") for line in found.split())}


def test_a_worker_added_and_rebalanced_under_ingest_changes_no_figure(cluster):
    keys = {
        scope: with_connection(cluster.url, lambda conn, s=scope: create_key(conn, s, None)).key
        for scope in (Scope.INGEST, Scope.ADMIN)
    }
    events = Events(7, ORGS, lambda rng: BASE_TIME + timedelta(seconds=rng.randrange(HOURS * 3600)))
    acknowledged: list[dict] = []
    stop = threading.Event()
    with running_server(cluster.url, **UNLIMITED) as server:

        def ingester() -> None:
            with faults.client(server) as client:
                while not stop.is_set():
                    batch = [events.next() for _ in range(100)]
                    # Re-sends: the dedupe holds across a shard's move too.
                    batch += batch[:5]
                    response = post_events(client, keys[Scope.INGEST], batch)
                    assert response.status_code == 200, response.text
                    acknowledged.extend(batch[:100])

        thread = threading.Thread(target=ingester)
        thread.start()
        try:
            faults.wait_for(lambda: len(acknowledged) >= 500, 60, "ingest before the new worker")
            worker = cluster.new_worker()
            cluster.add(worker)
            cluster.coordinator.psql("SELECT citus_rebalance_start()")
            cluster.coordinator.psql("SELECT citus_rebalance_wait()")
            moved_at = len(acknowledged)
            faults.wait_for(lambda: len(acknowledged) >= moved_at + 500, 60, "ingest after")
        finally:
            stop.set()
            thread.join(timeout=60)
        assert not thread.is_alive()
        assert _placements(cluster).get(worker.port, 0) >= 2  # shards moved onto it
        assert len({(e["subject"], e["id"]) for e in acknowledged}) == len(acknowledged)
        assert len(rows(cluster.url, "event_receipts")) == len(acknowledged)
        window = (BASE_TIME, BASE_TIME + timedelta(hours=HOURS), "1h")
        checked = verify(server.url, keys[Scope.ADMIN], acknowledged, ORGS, window)
        assert checked == (len(ORGS) + 1) * 4
        assert httpx.get(f"{server.url}/readyz").status_code == 200
