"""A rebuild from the raw events leaves exactly the derived state that ingest built."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from testkit.database import DERIVED_TABLES, fold, rebuild, reset, snapshot, truncate_derived
from testkit.factories import llm_call, one_of_each, post_events
from testkit.server import usage_api
from testkit.strategies import deliveries, event_sets


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
