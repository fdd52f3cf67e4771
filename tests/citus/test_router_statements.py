"""On Citus every statement of one organization runs on one shard: each statement the service
sends while it ingests a batch of one organization, and while it answers that organization's
reads (every section, its filters, groups, compare, zones, CSV), is planned by the coordinator
as one task on one worker (a data-modifying CTE as a series of such tasks), never as rows
pulled to the coordinator or repartitioned.

The statements are caught as the service sends them (psycopg's cursor), then explained with
the parameters they were sent with: the folder's fold of one organization's queue among them.
"""

import re
from datetime import UTC, datetime, timedelta

from api.alerts.watcher import watch_once
from api.storage import exports
from api.storage.schema import api_keys, metadata
from testkit.database import fold, with_connection
from testkit.factories import (
    BASE_TIME,
    identity,
    iso,
    llm_call,
    one_of_each,
    post_events,
    workload_allocated,
)
from testkit.plans import assert_on_one_shard
from testkit.receiver import RECEIVER_HOSTS, receiver

# Written by the thresholds' routes, the watcher, and batches of organizations with thresholds.
THRESHOLD_TABLES = {
    "thresholds",
    "threshold_marks",
    "threshold_crossings",
    "threshold_deliveries",
    "threshold_tests",
}
# Written by the exporter (tests/citus/test_export_statements.py); a batch writes its queue.
EXPORTER_TABLES = {"export_state", "export_dirty", "export_files", "export_partitions"}

_WRITTEN = re.compile(r"\b(?:INSERT INTO|DELETE FROM) (\w+)")
_GROUPS = {
    "llm": ["model", "identity"],
    "compute": ["agent"],
    "storage": ["agent"],
    "platform": ["identity"],
}
_FILTERS = {
    "llm": {"model": "gpt-5", "identity": "agent:a1"},
    "compute": {"agent": "a1"},
    "storage": {"agent": "a1"},
    "platform": {"identity": "agent:a1"},
}


def test_every_statement_of_one_orgs_batch_runs_on_one_shard(client, db, ingest_key, sent):
    # A destination registered: batches then queue their events for export too.
    with_connection(db, lambda conn: exports.register(conn, "file:///export", BASE_TIME.date()))
    sent.clear()
    later = BASE_TIME.replace(hour=3)
    batch = [
        *one_of_each(),
        *one_of_each(later),
        llm_call(who=identity("u-1", kind="user", name="Ana"), time=later),
    ]
    assert post_events(client, ingest_key, batch).status_code == 200
    # A second batch: the organization now exists, the objects have events to rebuild from.
    again = one_of_each(BASE_TIME.replace(hour=2))
    assert post_events(client, ingest_key, again).status_code == 200
    fold(db)  # the folder's statements too (the server's may have folded some already)
    writes = [statement for statement in sent if _WRITTEN.search(statement[0])]
    written = {table for query, _ in writes for table in _WRITTEN.findall(query)}
    every_event_table = {table.name for table in metadata.sorted_tables} - {api_keys.name}
    assert written == every_event_table - THRESHOLD_TABLES - EXPORTER_TABLES
    assert_on_one_shard(db, sent)


def test_every_statement_of_watching_one_orgs_thresholds_runs_on_one_shard(
    client, db, admin_key, ingest_key, read_key, sent
):
    """Thresholds created, tested, their secrets rotated, read and deleted; the marks ingest
    leaves; the watcher's evaluation (an allocation's recheck among it), crossings and
    deliveries."""
    headers = {"Authorization": f"Bearer {admin_key}"}
    with receiver() as hook:
        ids = []
        # Limits any usage crosses: one token (tokens count whole), a thousandth of a
        # core-hour.
        for section, measure, limit in (
            ("llm", "input_tokens", 1),
            ("compute", "cpu_core_hours", 0.001),
        ):
            asked = {"section": section, "measure": measure, "period": "day", "limit": limit}
            created = client.post(
                "/orgs/acme/thresholds", json=asked | {"url": hook.url}, headers=headers
            )
            assert created.status_code == 201, created.text
            ids.append(created.json()["id"])
            hook.secrets[ids[-1]] = created.json()["secret"]
        now = datetime.now(UTC)
        batch = [llm_call(time=now), workload_allocated(time=now - timedelta(minutes=1))]
        assert post_events(client, ingest_key, batch).status_code == 200
        watched = with_connection(
            db,
            lambda conn: watch_once(
                conn, allowed_hosts=RECEIVER_HOSTS, public_url="http://usage.test"
            ),
        )
        assert len(watched.evaluation.crossings) == 2 and watched.deliveries.delivered == 2
        for threshold_id in ids:
            rotated = client.post(f"/orgs/acme/thresholds/{threshold_id}/secret", headers=headers)
            assert rotated.status_code == 200, rotated.text
            hook.secrets[threshold_id] = rotated.json()["secret"]
            tested = client.post(f"/orgs/acme/thresholds/{threshold_id}/test", headers=headers)
            assert tested.json()["status"] == 200, tested.text
    for threshold_id in ids:
        for path in (f"/{threshold_id}", f"/{threshold_id}/deliveries", ""):
            answer = client.get(f"/orgs/acme/thresholds{path}", headers=headers)
            assert answer.status_code == 200, answer.text
        assert (
            client.delete(f"/orgs/acme/thresholds/{threshold_id}", headers=headers).status_code
            == 204
        )
    written = {table for query, _ in sent for table in _WRITTEN.findall(query)}
    assert written >= THRESHOLD_TABLES
    assert_on_one_shard(db, sent)


def test_every_read_of_one_org_runs_on_one_shard(client, db, ingest_key, read_key, sent):
    assert post_events(client, ingest_key, one_of_each()).status_code == 200
    assert post_events(client, ingest_key, [llm_call(org="globex")]).status_code == 200
    sent.clear()
    windows = [
        {"range": "7d", "end": iso(BASE_TIME.replace(hour=5))},
        {"start": iso(BASE_TIME.replace(minute=7)), "end": iso(BASE_TIME.replace(hour=4))},
        {"range": "24h", "end": iso(BASE_TIME.replace(hour=5)), "tz": "Asia/Kolkata"},
    ]
    headers = {"Authorization": f"Bearer {read_key}"}
    asked = 0
    for section, filters in _FILTERS.items():
        path = f"/orgs/acme/usage/{section}"
        for window in windows:
            for params in [
                window,
                {**window, "compare": "previous", **filters},
                {**window, "format": "csv"},
                *({**window, "by": by} for by in _GROUPS[section]),
            ]:
                target = f"{path}/groups" if "by" in params else path
                response = client.get(target, params=params, headers=headers)
                assert response.status_code == 200, response.text
                asked += 1
    assert len(sent) >= asked
    assert_on_one_shard(db, sent)
