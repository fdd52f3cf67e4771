"""On Citus every statement of one organization runs on one shard: each statement the service
sends while it ingests a batch of one organization, and while it answers that organization's
reads (every section, its filters, groups, compare, zones, CSV), is planned by the coordinator
as one task on one worker (a data-modifying CTE as a series of such tasks), never as rows
pulled to the coordinator or repartitioned.

The statements are caught as the service sends them (psycopg's cursor), then explained with
the parameters they were sent with: the folder's fold of one organization's queue among them.
"""

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from api.alerts.watcher import watch_once
from api.storage.db import connect
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
from testkit.receiver import RECEIVER_HOSTS, receiver

Sent = tuple[str, dict]
# Written by the thresholds' routes, the watcher, and batches of organizations with thresholds.
THRESHOLD_TABLES = {"thresholds", "threshold_marks", "threshold_crossings", "threshold_deliveries"}
# Written by the exporter (tests/citus/test_export.py); a batch writes its queue.
EXPORTER_TABLES = {"export_state", "export_dirty", "export_files", "export_partitions"}

_TASKS = re.compile(r"Task Count: (\d+)")
_TABLE_SCAN = re.compile(r"(Seq|Index|Index Only|Bitmap Heap) Scan on")
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


@pytest.fixture
def sent(monkeypatch) -> Iterator[list[Sent]]:
    """Every statement sent through psycopg meanwhile, with its parameters."""
    caught: list[Sent] = []
    send = psycopg.AsyncCursor.execute

    async def catching(cursor, query, params=None, **options):
        if isinstance(query, bytes) and isinstance(params, dict):  # api.storage.db.Compiled
            caught.append((query.decode(), dict(params)))
        return await send(cursor, query, params, **options)

    monkeypatch.setattr(psycopg.AsyncCursor, "execute", catching)
    yield caught


def _plan(database_url: str, statement: Sent) -> str:
    query, params = statement
    with connect(database_url) as conn, conn.transaction(force_rollback=True):
        return "\n".join(row[0] for row in conn.execute("EXPLAIN " + query, params))


def _of_every_org(statement: Sent) -> bool:
    """The folder's look at every organization's queue (which have queued rows; how many
    rows wait), and the watcher's at every organization's marks, rechecks and crossings due:
    they visit every shard by design, and name no organization."""
    query, params = statement
    return ("_pending" in query or "threshold" in query) and not {"org", "batch_orgs"} & set(params)


def _assert_on_one_shard(database_url: str, statements: list[Sent]) -> None:
    statements = [statement for statement in statements if not _of_every_org(statement)]
    assert statements
    for statement in statements:
        plan = _plan(database_url, statement)
        if "Custom Scan (Citus" in plan:
            assert [int(n) for n in _TASKS.findall(plan)] == [1] * len(_TASKS.findall(plan)), (
                statement[0],
                plan,
            )
            assert _TASKS.findall(plan), plan
            assert "pull to coordinator" not in plan and "repartition" not in plan, plan
        else:
            # The coordinator's own work (the advisory locks of a rebuild): no table read.
            assert not _TABLE_SCAN.search(plan), (statement[0], plan)


def test_every_statement_of_one_orgs_batch_runs_on_one_shard(client, db, ingest_key, sent):
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
    _assert_on_one_shard(db, sent)


def test_every_statement_of_watching_one_orgs_thresholds_runs_on_one_shard(
    client, db, admin_key, ingest_key, read_key, sent
):
    """Thresholds created, read and deleted; the marks ingest leaves; the watcher's
    evaluation (an allocation's recheck among it), crossings and deliveries."""
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
        for path in (f"/{threshold_id}", f"/{threshold_id}/deliveries", ""):
            answer = client.get(f"/orgs/acme/thresholds{path}", headers=headers)
            assert answer.status_code == 200, answer.text
        assert (
            client.delete(f"/orgs/acme/thresholds/{threshold_id}", headers=headers).status_code
            == 204
        )
    written = {table for query, _ in sent for table in _WRITTEN.findall(query)}
    assert written >= THRESHOLD_TABLES
    _assert_on_one_shard(db, sent)


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
    _assert_on_one_shard(db, sent)
