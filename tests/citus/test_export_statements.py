"""On Citus the exporter's statements are per organization (one task) or per shard (tasks on
the shards, no rows pulled to the coordinator nor repartitioned), and its files are the same
as on one PostgreSQL: every event once, every day's figures the oracle's."""

from datetime import UTC, datetime, timedelta

from api.export import events
from api.export.datasets import EVENT_DATASETS
from api.storage import exports
from testkit.database import with_connection
from testkit.exported import check_events, check_hourly, export
from testkit.factories import BASE_TIME, llm_call, one_of_each, post_events
from testkit.plans import assert_not_through_the_coordinator, plan, tasks

_NOW = datetime(2026, 11, 6, tzinfo=UTC)


def test_every_statement_of_an_export_is_per_org_or_per_shard(
    client, db, ingest_key, sent, tmp_path
):
    url = f"file://{tmp_path}/export"
    before = [*one_of_each(BASE_TIME), llm_call(org="globex", time=BASE_TIME)]
    assert post_events(client, ingest_key, before).status_code == 200
    export(db, url, now=_NOW)  # registered, then a backfill of every day stored
    after = [*one_of_each(BASE_TIME + timedelta(days=1)), llm_call(org="globex")]
    assert post_events(client, ingest_key, after).status_code == 200
    sent.clear()
    export(db, url, now=_NOW)  # a job of the queue; hourly figures changed
    with_connection(db, lambda conn: exports.backfill_from(conn, BASE_TIME.date()))
    export(db, url, now=_NOW)  # a backfill again
    assert sent
    for statement in sent:
        found = plan(db, statement)
        if "org" in statement[1] and statement[1]["org"] is not None:
            assert tasks(found) and set(tasks(found)) == {1}, (statement[0], found)
        assert_not_through_the_coordinator(found)
    # The events' COPYs, from a worker thread's own connection.
    for dataset in EVENT_DATASETS:
        for statement, params in (
            (events._JOB_ROWS[dataset.name], {"job": 1}),
            (events._DATE_ROWS[dataset.name], {"day_start": BASE_TIME}),
        ):
            assert_not_through_the_coordinator(
                plan(db, (statement.sql.decode(), statement.params(params)))
            )
    root = tmp_path / "export"
    check_events(root, before + after)
    check_hourly(root, before + after, [BASE_TIME.date() + timedelta(days=n) for n in range(4)])
