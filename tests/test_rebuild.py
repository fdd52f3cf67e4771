"""A rebuild from the raw events leaves exactly the derived state that ingest built."""

import threading
from datetime import timedelta

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from testkit.database import DERIVED_TABLES, fold, rebuild, reset, snapshot, truncate_derived
from testkit.factories import BASE_TIME, llm_call, one_of_each, post_events
from testkit.server import PATIENT_POOL, UNLIMITED, running_server, usage_api
from testkit.strategies import deliveries, event_sets
from testkit.traffic import Events

HOUR = timedelta(hours=1)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data(), events=event_sets)
def test_rebuild_equals_ingest(client, database_url, ingest_key, data, events):
    reset(database_url)
    for batch in data.draw(deliveries(events)):
        assert post_events(client, ingest_key, batch).status_code == 200
    fold(database_url)
    built_by_ingest = snapshot(database_url)
    truncate_derived(database_url)
    rebuild(database_url)
    assert snapshot(database_url) == built_by_ingest


def test_usage_api_rebuild_of_one_org_leaves_the_others(client, db, ingest_key):
    events = [*one_of_each(), llm_call(org="globex"), *one_of_each()[1:3]]
    for event in events[-2:]:
        event["subject"] = "globex"
    assert post_events(client, ingest_key, events).status_code == 200
    fold(db)
    built_by_ingest = snapshot(db)
    truncate_derived(db)
    result = usage_api(db, "rebuild", "--org", "acme")
    assert result.returncode == 0, result.stderr
    rebuilt = snapshot(db)
    for table in DERIVED_TABLES:
        expected = built_by_ingest[table.name]
        assert rebuilt[table.name] == [row for row in expected if row[0] == "acme"], table.name
    for name in ("llm_totals_1d", "workload_segments"):
        assert any(row[0] == "globex" for row in built_by_ingest[name])


def test_a_rebuild_beside_ingest_and_a_folding_server_changes_no_figure(db, ingest_key):
    """A rebuild while a server ingests mixed events and folds them: no batch refused (the
    rebuild, ingest and the folder take their locks in an order that cannot deadlock), and
    what they leave is what a rebuild from scratch leaves."""
    statuses: list[int] = []
    stopping = threading.Event()
    with running_server(db, USAGE_FOLD_INTERVAL="0.01", **UNLIMITED, **PATIENT_POOL) as server:

        def ingester() -> None:
            events = Events(7, ["acme", "globex"], lambda rng: BASE_TIME + rng.uniform(0, 9) * HOUR)
            with httpx.Client(base_url=server.url, timeout=60) as http:
                while not stopping.is_set():
                    batch = [events.next() for _ in range(50)]
                    statuses.append(post_events(http, ingest_key, batch).status_code)

        thread = threading.Thread(target=ingester)
        thread.start()
        rebuilds = 0
        try:
            while rebuilds < 3 or len(statuses) < 20:
                assert rebuilds < 200, "ingest did not get through"
                rebuild(db)
                rebuilds += 1
        finally:
            stopping.set()
            thread.join(timeout=60)
    assert set(statuses) == {200}
    built = snapshot(db)
    truncate_derived(db)
    rebuild(db)
    assert snapshot(db) == built
