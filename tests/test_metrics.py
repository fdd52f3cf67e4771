"""GET /metrics: Prometheus text, no key needed, no organization in any label."""

import re
from datetime import UTC, datetime

from api.alerts.watcher import Watcher
from api.storage.availability import Database
from api.web.metrics import UNMATCHED
from testkit.database import with_connection
from testkit.factories import llm_call, post_events, thread_created
from testkit.receiver import RECEIVER_HOSTS, receiver


def _sample(text: str, name: str, labels: str = "") -> float:
    pattern = rf"^{re.escape(name)}{re.escape(labels)} (\S+)$"
    found = re.search(pattern, text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_metrics_count_events_by_type_and_duplicates(client, db, ingest_key):
    before = client.get("/metrics").text
    events = [llm_call(id="m1"), llm_call(id="m2"), thread_created(id="t1")]
    assert post_events(client, ingest_key, events).status_code == 200
    assert post_events(client, ingest_key, events[:1]).status_code == 200
    after = client.get("/metrics")
    assert after.status_code == 200
    assert after.headers["content-type"].startswith("text/plain")
    stored = "usage_events_stored_total"
    for labels, added in (('{type="llm.call"}', 2), ('{type="thread.created"}', 1)):
        assert _sample(after.text, stored, labels) - _sample(before, stored, labels) == added
    duplicates = "usage_events_duplicate_total"
    assert _sample(after.text, duplicates) - _sample(before, duplicates) == 1


def test_latency_is_labelled_by_route_not_by_organization(client, read_key):
    client.get("/orgs/acme/usage/llm", headers={"Authorization": f"Bearer {read_key}"})
    text = client.get("/metrics").text
    assert 'path="/orgs/{org}/usage/llm"' in text
    assert "usage_request_duration_seconds_bucket" in text
    assert "acme" not in text


def test_every_answer_is_counted_by_route_and_status(client, read_key):
    cases = [
        ("get", "/orgs/acme/usage/llm", {}, "/orgs/{org}/usage/llm", "401"),
        (
            "get",
            "/orgs/acme/usage/llm",
            {"Authorization": "Bearer nope"},
            "/orgs/{org}/usage/llm",
            "401",
        ),
        ("get", "/no/such/path", {}, UNMATCHED, "404"),
        ("delete", "/events", {}, UNMATCHED, "405"),  # no route has that method
        (
            "get",
            "/orgs/acme/usage/llm",
            {"Authorization": f"Bearer {read_key}"},
            "/orgs/{org}/usage/llm",
            "200",
        ),
    ]
    for method, path, headers, template, status in cases:
        labels = f'{{method="{method.upper()}",path="{template}",status_code="{status}"}}'
        before = _sample(client.get("/metrics").text, "usage_requests_total", labels)
        getattr(client, method)(path, headers=headers)
        after = _sample(client.get("/metrics").text, "usage_requests_total", labels)
        assert after - before == 1, (method, path)
    text = client.get("/metrics").text
    assert "/no/such/path" not in text
    in_progress = [
        line for line in text.splitlines() if line.startswith("usage_requests_in_progress{")
    ]
    assert in_progress
    assert all("status_code" not in line for line in in_progress)


def test_metrics_count_the_watchers_crossings_and_webhooks(client, db, admin_key, ingest_key):
    async def one_pass(_):
        database = Database(db, 1)
        await database.open()
        try:
            watcher = Watcher(
                database, interval=1, allowed_hosts=RECEIVER_HOSTS, public_url="http://usage.test"
            )
            return await watcher.once()
        finally:
            await database.close()

    before = client.get("/metrics").text
    with receiver() as hook:
        asked = {"section": "llm", "measure": "input_tokens", "period": "day", "limit": 1}
        created = client.post(
            "/orgs/acme/thresholds",
            json=asked | {"url": hook.url},
            headers={"Authorization": f"Bearer {admin_key}"},
        ).json()
        hook.secrets[created["id"]] = created["secret"]
        now = datetime.now(UTC)
        assert post_events(client, ingest_key, [llm_call(time=now)]).status_code == 200
        assert with_connection(db, one_pass) is not None
    after = client.get("/metrics").text
    crossings = "usage_threshold_crossings_total"
    assert _sample(after, crossings) - _sample(before, crossings) == 1
    attempts, delivered = "usage_webhook_attempts_total", '{outcome="delivered"}'
    assert _sample(after, attempts, delivered) - _sample(before, attempts, delivered) == 1
    assert _sample(after, "usage_watch_pass_seconds") > 0
