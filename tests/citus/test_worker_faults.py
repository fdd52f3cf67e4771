"""A worker of the Citus cluster stopped as by a crash (``immediate``) mid-ingest, while
every batch spans organizations on both workers (each batch one distributed transaction)
and the server's folder folds them: 503s meanwhile, nothing acknowledged lost, half-written
or folded twice, and recovery once the worker is back, without restarting the service (its
folder empties the queue by itself). On its own durable three-node cluster."""

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.dev.citus_cluster import CitusCluster
from api.storage import migrations
from api.storage.keys import Scope, create_key
from testkit import faults
from testkit.database import with_connection
from testkit.factories import llm_call
from testkit.server import UNLIMITED, Server, running_server

# Eight organizations: with eight shards on two workers, both workers hold some of them.
ORGS = [f"org-{n}" for n in range(8)]


@pytest.fixture(scope="module")
def cluster() -> Iterator[CitusCluster]:
    # A commit is in the WAL before it is acknowledged; fsync may stay off, as the nodes
    # crash here, not the machine (the OS keeps what they wrote).
    folder = Path(tempfile.mkdtemp(prefix="usage-citus-faults-"))
    citus = CitusCluster(folder, settings={"synchronous_commit": "on"})
    citus.start()
    migrations.upgrade(citus.url)
    yield citus
    citus.remove()


@pytest.fixture(scope="module")
def server(cluster) -> Iterator[Server]:
    with running_server(cluster.url, **UNLIMITED) as running:
        yield running


def test_a_worker_down_mid_ingest_is_503_then_recovers_with_nothing_lost(cluster, server):
    key = with_connection(cluster.url, lambda conn: create_key(conn, Scope.INGEST, None)).key
    worker = cluster.workers[0]
    held = cluster.coordinator.psql(
        "SELECT count(DISTINCT nodeport) FROM pg_dist_shard_placement"
        " JOIN pg_dist_shard USING (shardid) WHERE logicalrelid = 'orgs'::regclass"
        f" AND shardid IN (SELECT get_shard_id_for_distribution_column('orgs', o)"
        f" FROM unnest(ARRAY{ORGS!r}) o)"
    )
    assert held == "2"  # the batches span both workers

    faults.ingest_through_an_outage(
        server,
        key,
        cluster.url,
        stop=lambda: worker.stop(mode="immediate"),
        start=worker.start,
        batch=lambda n: [llm_call(org=ORGS[i % len(ORGS)], id=f"call-{n}-{i}") for i in range(40)],
    )
