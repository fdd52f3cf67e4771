"""`usage-api distribute`: a populated single-node database, converted in place on a Citus
coordinator, answers exactly as before; interrupted, it carries on where it stopped."""

from collections.abc import Iterator

import pytest
from litestar.testing import TestClient

from api.reads.sections import SECTION_NAMES
from api.settings import Settings
from api.storage import distribution, migrations
from api.storage.db import connect
from api.storage.keys import Scope, create_key
from api.web.app import create_app
from testkit.database import snapshot, with_connection
from testkit.factories import BASE_TIME, iso, one_of_each, post_events
from testkit.server import ANY_AGE, usage_api

ORGS = ["acme", "globex", "initech", "umbrella"]


@pytest.fixture
def single_node_url(postgres) -> str:
    """A database on the test cluster's coordinator with the service's tables as plain
    PostgreSQL ones (no Citus in it yet), with every kind of event for four orgs."""
    url = postgres.create_database("single_node")
    migrations.upgrade(url)
    with connect(url) as conn:
        assert not distribution.citus_present(conn)
    return url


@pytest.fixture
def service(single_node_url) -> Iterator[tuple[TestClient, str]]:
    settings = Settings(database_url=single_node_url, rate_limit=0, auth_failure_rate=0, **ANY_AGE)
    admin = with_connection(single_node_url, lambda conn: create_key(conn, Scope.ADMIN, None))
    ingest = with_connection(single_node_url, lambda conn: create_key(conn, Scope.INGEST, None))
    with TestClient(app=create_app(settings)) as client:
        for hour, org in enumerate(ORGS):
            events = one_of_each(BASE_TIME.replace(hour=hour))
            batch = [{**event, "subject": org} for event in events]
            assert post_events(client, ingest.key, batch).status_code == 200
        yield client, admin.key


def _answers(client: TestClient, admin_key: str) -> dict[str, dict]:
    params = {"start": iso(BASE_TIME), "end": iso(BASE_TIME.replace(hour=9)), "bucket": "1h"}
    headers = {"Authorization": f"Bearer {admin_key}"}
    found = {}
    for section in SECTION_NAMES:
        for path in [f"/usage/{section}", *(f"/orgs/{org}/usage/{section}" for org in ORGS)]:
            response = client.get(path, params=params, headers=headers)
            assert response.status_code == 200, response.text
            found[path] = response.json()
    return found


def test_distribute_converts_in_place_resumes_and_changes_no_figure(
    postgres, single_node_url, service
):
    client, admin_key = service
    answers, tables = _answers(client, admin_key), snapshot(single_node_url)
    assert any(tables.values())
    postgres.distribute_into("single_node")

    # Interrupted after a few tables (as by Ctrl-C): those stay distributed, the rest plain.
    class Interrupted(Exception):
        pass

    def stop_at_the_fourth(placement: distribution.Placement) -> None:
        if placement is distribution.PLACEMENTS[3]:
            raise Interrupted

    with connect(single_node_url) as conn, pytest.raises(Interrupted):
        distribution.distribute(conn, stop_at_the_fourth)
    with connect(single_node_url) as conn:
        assert distribution.placed(conn) >= {p.table for p in distribution.PLACEMENTS[:3]}
        assert [p.table for p in distribution.pending(conn)] == [
            p.table for p in distribution.PLACEMENTS[3:]
        ]

    done = usage_api(single_node_url, "distribute")
    assert done.returncode == 0, done.stderr
    assert f"distributed {len(distribution.PLACEMENTS) - 3} tables" in done.stdout
    assert "llm_calls" in done.stderr  # progress names each table
    with connect(single_node_url) as conn:
        assert not distribution.pending(conn)
        kinds = dict(
            conn.execute("SELECT logicalrelid::regclass::text, partmethod FROM pg_dist_partition")
        )
    assert kinds["api_keys"] == "n" and kinds["llm_calls"] == "h"
    assert kinds["llm_calls_default"] == "h"  # a partition, distributed with its table

    assert snapshot(single_node_url) == tables
    assert _answers(client, admin_key) == answers
    again = usage_api(single_node_url, "distribute")
    assert again.returncode == 0 and "nothing to do" in again.stdout
