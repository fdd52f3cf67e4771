"""The write path (api.storage.folding): ingest appends to the queues and never touches a
rollup; folds, whole, partial or interrupted, move each event from a queue into the rollups
exactly once; every read in between adds the queue to the rollups, so every answer equals
the oracle whatever was folded."""

import os
import signal
import subprocess
import sys
import textwrap

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule
from litestar.testing import TestClient

from api.settings import Settings
from api.storage.folding import PENDING_TABLES, QUEUES
from api.storage.rollups import ALL as FAMILIES
from api.web.app import create_app
from testkit.answers import check_every_endpoint, windows
from testkit.database import (
    fold,
    fold_one,
    rebuild,
    reset,
    rows_as_they_are,
    snapshot,
    truncate_derived,
)
from testkit.engine import examples
from testkit.factories import BASE_TIME, llm_call, message_sent, post_events, thread_created
from testkit.faults import wait_for
from testkit.server import ANY_AGE, usage_api
from testkit.spans import EXAMPLE, PROTOBUF, protobuf_request
from testkit.strategies import event_sets

_TIERED = [table for family in FAMILIES for table in family.tables.values()]


def _queued(database_url: str) -> int:
    return sum(len(rows_as_they_are(database_url, table.name)) for table in PENDING_TABLES)


def _rollup_rows(database_url: str) -> int:
    return sum(len(rows_as_they_are(database_url, table.name)) for table in _TIERED)


def _app(database_url: str, **changes) -> TestClient:
    """A client of an app whose server folds nothing (the tests fold), unless ``changes``."""
    settings = Settings(
        database_url=database_url,
        rate_limit=0,
        auth_failure_rate=0,
        **({"fold_in_server": False, "fold_interval": 0.05} | ANY_AGE | changes),
    )
    return TestClient(app=create_app(settings))


@pytest.fixture
def unfolded(db):
    with _app(db) as client:
        yield client


def test_ingest_appends_and_a_fold_moves_the_queue_into_the_rollups(db, unfolded, ingest_key):
    events = [
        llm_call(time=BASE_TIME),
        llm_call(org="globex", time=BASE_TIME),
        thread_created(time=BASE_TIME),
        message_sent(time=BASE_TIME),
    ]
    assert post_events(unfolded, ingest_key, events).status_code == 200
    assert _rollup_rows(db) == 0
    assert _queued(db) == 4
    done = fold(db)
    assert (done.rows, done.orgs) == (4, 3)  # acme's LLM and platform queues, globex's LLM
    assert _queued(db) == 0
    assert _rollup_rows(db) > 0
    folded = snapshot(db)
    truncate_derived(db)
    rebuild(db)
    assert snapshot(db) == folded


class FoldingAtRandom(RuleBasedStateMachine):
    """Batches ingested, folds of one organization's queue (committed, or interrupted before
    the commit) and whole folds in any order, with reads between them: every section, its
    groups, filters, zones and the previous period equal the oracle's at every step."""

    client: TestClient
    database_url: str
    keys: tuple[str, str, str]  # ingest, read (acme), admin

    @initialize()
    def empty(self) -> None:
        reset(self.database_url)
        self.events: list[dict] = []

    @rule(batch=event_sets)
    def ingest(self, batch: list[dict]) -> None:
        response = post_events(self.client, self.keys[0], batch)
        assert response.status_code == 200, response.text
        self.events += batch

    @rule(
        queue=st.sampled_from([queue.name for queue in QUEUES]),
        org=st.sampled_from(["acme", "globex"]),
        commit=st.booleans(),
    )
    def fold_one(self, queue: str, org: str, commit: bool) -> None:
        before = _queued(self.database_url)
        folded = fold_one(self.database_url, queue, org, commit=commit)
        assert before - _queued(self.database_url) == (folded if commit else 0)

    @rule()
    def fold_all(self) -> None:
        fold(self.database_url)
        assert _queued(self.database_url) == 0

    @rule(data=st.data(), tz=st.sampled_from(["UTC", "Asia/Kolkata", "America/New_York"]))
    def read(self, data, tz: str) -> None:
        if self.events:
            window = data.draw(windows(self.events, tz))
            top = data.draw(st.integers(1, 3))
            check_every_endpoint(self.client, self.keys[1:], data, self.events, window, top)


def test_every_answer_equals_the_oracle_whatever_was_folded(
    db, unfolded, ingest_key, read_key, admin_key
):
    FoldingAtRandom.client = unfolded
    FoldingAtRandom.database_url = db
    FoldingAtRandom.keys = (ingest_key, read_key, admin_key)
    run = settings(
        max_examples=examples(25),
        stateful_step_count=10,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )(FoldingAtRandom)
    run.TestCase().runTest()


# A fold that stops between its statement and its commit: the test kills it there.
_FOLD_THEN_WAIT = textwrap.dedent(
    """
    import asyncio, sys, psycopg
    from api.storage.db import connect_kwargs
    from api.storage.folding import QUEUES, fold_org

    async def main():
        async with await psycopg.AsyncConnection.connect(sys.argv[1], **connect_kwargs()) as conn:
            async with conn.transaction():
                folded = await fold_org(conn, QUEUES[0], "acme")
                print(folded, flush=True)
                await asyncio.sleep(600)

    asyncio.run(main())
    """
)


def test_a_fold_killed_before_its_commit_loses_nothing_and_counts_nothing_twice(
    db, unfolded, ingest_key, read_key
):
    events = [llm_call(time=BASE_TIME, id=f"k{n}", input_tokens=100 + n) for n in range(50)]
    assert post_events(unfolded, ingest_key, events).status_code == 200
    headers = {"Authorization": f"Bearer {read_key}"}
    window = {"start": "2026-11-01T00:00:00Z", "end": "2026-11-03T00:00:00Z"}
    before = unfolded.get("/orgs/acme/usage/llm", params=window, headers=headers).json()
    folding = subprocess.Popen(
        [sys.executable, "-c", _FOLD_THEN_WAIT, db],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ},
    )
    try:
        assert folding.stdout.readline().strip() == "50"  # folded, not committed
        # Meanwhile the queue is still whole to readers, and the rollups untouched.
        assert _queued(db) == 50 and _rollup_rows(db) == 0
        folding.send_signal(signal.SIGKILL)
        folding.wait(timeout=10)
    finally:
        folding.kill()
    # Its transaction rolled back with the connection.
    wait_for(lambda: _queued(db) == 50, 10, "the rollback")
    assert fold(db).rows == 50
    after = unfolded.get("/orgs/acme/usage/llm", params=window, headers=headers).json()
    assert after["summary"] == before["summary"]
    assert after["summary"]["input_tokens"] == sum(100 + n for n in range(50))


def test_past_the_bound_ingest_is_503_with_retry_after_and_stores_nothing(db, ingest_key):
    with _app(db, pending_limit=3) as client:
        folder = client.app.state.folder

        def measured(rows: int) -> None:
            wait_for(
                lambda: folder.status.queue is not None and folder.status.queue.rows == rows,
                10,
                "the measure",
            )

        batch = [llm_call(id=f"b{n}") for n in range(3)]
        assert post_events(client, ingest_key, batch).status_code == 200
        measured(3)
        # Exactly the bound waits: not more than it, so a batch is still taken.
        assert post_events(client, ingest_key, [llm_call(id="at")]).status_code == 200
        measured(4)
        refused = post_events(client, ingest_key, [llm_call(id="over")])
        assert refused.status_code == 503
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.headers["retry-after"] == "1"
        assert "USAGE_PENDING_LIMIT" in refused.json()["detail"]
        # OpenTelemetry's spans wait alike (their exporters retry a 503 after Retry-After).
        spans = client.post(
            "/v1/traces",
            content=protobuf_request([EXAMPLE]),
            headers={"Authorization": f"Bearer {ingest_key}", "Content-Type": PROTOBUF},
        )
        assert spans.status_code == 503 and spans.headers["retry-after"] == "1"
        assert _queued(db) == 4
        ready = client.get("/readyz").json()
        assert ready["folder"]["pending_rows"] == 4 and ready["folder"]["pending_limit"] == 3
        metrics = client.get("/metrics").text
        assert "usage_pending_rows 4.0" in metrics
        fold(db)
        measured(0)
        assert post_events(client, ingest_key, [llm_call(id="over")]).status_code == 200


def test_the_servers_folder_keeps_the_queue_empty_and_reports_it(db, ingest_key):
    with _app(db, fold_in_server=True) as client:
        folder = client.app.state.folder
        assert (
            post_events(client, ingest_key, [llm_call(id=f"s{n}") for n in range(20)]).status_code
            == 200
        )
        wait_for(lambda: _queued(db) == 0, 10, "the folder")
        wait_for(lambda: folder.status.folded_rows == 20, 10, "the folder's count")
        ready = client.get("/readyz").json()["folder"]
        assert ready["folding"] is True and ready["error"] is None
        metrics = client.get("/metrics").text
        assert "usage_folded_rows_total" in metrics
        assert "usage_pending_oldest_seconds" in metrics
    assert len(rows_as_they_are(db, "llm_totals_5m")) == 1


def test_usage_api_fold_once_folds_the_queue(db, unfolded, ingest_key):
    assert (
        post_events(unfolded, ingest_key, [llm_call(id=f"c{n}") for n in range(7)]).status_code
        == 200
    )
    result = usage_api(db, "fold", "--once")
    assert result.returncode == 0, result.stderr
    assert "folded 7 events; 0 waiting" in result.stdout
    assert _queued(db) == 0
