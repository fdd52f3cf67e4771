"""A threshold's test webhook and secret rotation (§10): POST .../test sends a signed
usage.threshold.test now, answers its outcome and lists it with the deliveries, never as a
crossing, under the crossings' target checks; POST .../secret makes a new secret, and for
24 h every webhook (tests and crossings) carries both signatures, as the standardwebhooks
package verifies holding either secret."""

from datetime import UTC, datetime, timedelta

import msgspec
import psycopg
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from api.alerts.delivery import CrossedBody
from api.alerts.watcher import watch_once
from api.storage import thresholds as thresholds_storage
from api.storage.db import connect_kwargs
from api.storage.keys import Scope
from api.storage.thresholds import TESTS_KEPT, WebhookTest, record_test
from testkit.database import rows, with_connection
from testkit.factories import llm_call, post_events
from testkit.receiver import RECEIVER_HOSTS, Received, receiver

_CLOSED = "http://127.0.0.1:9/hook"  # listed for the tests' server; nothing listens there


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _create(client, key, url, org="acme") -> dict:
    asked = {"section": "llm", "measure": "input_tokens", "period": "day", "limit": 150}
    answer = client.post(f"/orgs/{org}/thresholds", json=asked | {"url": url}, headers=_bearer(key))
    assert answer.status_code == 201, answer.text
    return answer.json()


def _test(client, key, threshold: dict, org="acme"):
    return client.post(f"/orgs/{org}/thresholds/{threshold['id']}/test", headers=_bearer(key))


def _rotate(client, key, threshold: dict, org="acme"):
    return client.post(f"/orgs/{org}/thresholds/{threshold['id']}/secret", headers=_bearer(key))


def _deliveries(client, key, threshold: dict) -> dict:
    answer = client.get(f"/orgs/acme/thresholds/{threshold['id']}/deliveries", headers=_bearer(key))
    assert answer.status_code == 200, answer.text
    return answer.json()


def _verifies(secret: str, got: Received) -> bool:
    try:
        Webhook(secret).verify(got.raw, got.headers)
    except WebhookVerificationError:
        return False
    return True


def _set_rotated_at(db: str, threshold: dict, when: datetime) -> None:
    with psycopg.connect(db, **connect_kwargs()) as conn:
        conn.execute(
            "UPDATE thresholds SET rotated_at = %s WHERE threshold_id = %s", (when, threshold["id"])
        )


def test_a_test_webhook_is_sent_signed_now_and_listed_apart_from_crossings(
    client, db, new_key, read_key
):
    manage = new_key(Scope.MANAGE, "acme").key
    with receiver() as hook:
        threshold = _create(client, manage, hook.url)
        hook.secrets[threshold["id"]] = threshold["secret"]
        answer = _test(client, manage, threshold)
    assert answer.status_code == 200, answer.text
    outcome = answer.json()
    assert outcome["status"] == 200 and outcome["error"] is None
    assert 0 <= outcome["duration_ms"] < 10_000
    (got,) = hook.received
    assert got.verified and got.webhook_id == outcome["webhook_id"]
    assert got.headers["webhook-signature"].count("v1,") == 1
    # A crossing's body, every field of it, typed and marked as a test.
    assert set(got.body) == {field.name for field in msgspec.structs.fields(CrossedBody)}
    assert got.body["type"] == "usage.threshold.test" and got.body["test"] is True
    assert got.body["threshold_id"] == threshold["id"] and got.body["limit"] == 150
    assert got.body["period"]["start"] == threshold["current_period"]["start"]
    listed = _deliveries(client, read_key, threshold)
    assert listed == {"deliveries": [], "tests": [outcome]}
    assert rows(db, "threshold_crossings") == []
    # Not a crossing: the watcher has nothing to deliver, and sends nothing again.
    watched = with_connection(
        db,
        lambda conn: watch_once(conn, allowed_hosts=RECEIVER_HOSTS, public_url="http://x"),
    )
    assert watched.deliveries.attempted == 0 and len(hook.received) == 1


def test_a_test_reads_its_threshold_and_secrets_in_one_statement(
    client, db, admin_key, monkeypatch
):
    """One read of the threshold's row: one round trip, and its fields and secrets as of
    one moment (a rotation cannot fall in between)."""
    threshold = _create(client, admin_key, _CLOSED)
    executed = []
    execute = thresholds_storage.execute

    async def watched(conn, statement, **values):
        executed.append(statement.sql)
        return await execute(conn, statement, **values)

    monkeypatch.setattr(thresholds_storage, "execute", watched)
    assert _test(client, admin_key, threshold).status_code == 200
    reads = [
        sql
        for sql in executed
        if sql.startswith(b"SELECT") and b"FROM thresholds " in sql and b" FOR " not in sql
    ]
    assert len(reads) == 1 and b"thresholds.url" in reads[0] and b"thresholds.secret" in reads[0]


def test_a_test_answers_the_receivers_status_or_why_none_came(client, db, admin_key, read_key):
    with receiver(answer=lambda _body, _nth: 503) as hook:
        failing = _create(client, admin_key, hook.url)
        hook.secrets[failing["id"]] = failing["secret"]
        answered = _test(client, admin_key, failing).json()
    assert (answered["status"], answered["error"]) == (503, "the receiver answered 503")
    assert len(hook.received) == 1  # one attempt, never retried
    closed = _create(client, admin_key, _CLOSED)
    unanswered = _test(client, admin_key, closed).json()
    assert unanswered["status"] is None and unanswered["error"].startswith("no HTTP answer")
    assert _deliveries(client, read_key, closed)["tests"] == [unanswered]


@pytest.mark.parametrize(
    "url",
    [
        # A name resolving to loopback, which only 127.0.0.1 is listed as: refused once
        # resolved, before connecting (the receiver listening there sees nothing).
        "https://localhost:{port}/hook",
        # Stored before today's checks, say: refused before anything is resolved.
        "https://169.254.169.254/latest/meta-data/",
        "https://10.0.0.1/hook",
    ],
)
def test_a_refused_target_is_refused_never_connected_to(client, db, admin_key, url):
    with receiver() as hook:
        threshold = _create(client, admin_key, hook.url)
        port = hook.url.split(":")[2].split("/")[0]
        with psycopg.connect(db, **connect_kwargs()) as conn:
            conn.execute(
                "UPDATE thresholds SET url = %s WHERE threshold_id = %s",
                (url.format(port=port), threshold["id"]),
            )
        answer = _test(client, admin_key, threshold)
    assert answer.status_code == 200, answer.text
    outcome = answer.json()
    assert outcome["status"] is None and outcome["error"].startswith("refused: ")
    assert hook.received == []
    assert _deliveries(client, admin_key, threshold)["tests"] == [outcome]


def test_only_admin_and_the_organizations_manage_keys_test_or_rotate(
    client, db, new_key, admin_key, read_key
):
    threshold = _create(client, admin_key, _CLOSED)
    other = new_key(Scope.MANAGE, "globex").key
    for act in (_test, _rotate):
        assert act(client, read_key, threshold).status_code == 403
        assert act(client, other, threshold).status_code == 404
        for unknown in ({"id": "thr_0000000000000000"}, {"id": "nothing"}):
            answer = act(client, admin_key, unknown)
            assert answer.status_code == 404, answer.text
            assert answer.headers["content-type"].startswith("application/problem+json")
        assert act(client, admin_key, threshold, org="globex").status_code == 404
    assert rows(db, "threshold_tests") == []
    with psycopg.connect(db, **connect_kwargs()) as conn:
        stored = conn.execute("SELECT secret, previous_secret FROM thresholds").fetchall()
    assert stored == [(threshold["secret"], None)]


def _cross(client, ingest_key) -> datetime:
    now = datetime.now(UTC)
    calls = [llm_call(time=now, input_tokens=100, cached_tokens=0) for _ in range(2)]
    assert post_events(client, ingest_key, calls).status_code == 200
    return now


def test_for_a_day_after_a_rotation_every_webhook_verifies_with_either_secret(
    client, db, new_key, ingest_key
):
    manage = new_key(Scope.MANAGE, "acme").key
    with receiver() as hook:
        threshold = _create(client, manage, hook.url)
        old = threshold["secret"]
        rotated = _rotate(client, manage, threshold)
        assert rotated.status_code == 200, rotated.text
        answer = rotated.json()
        new = answer["secret"]
        assert new.startswith("whsec_") and new != old
        hook.secrets[threshold["id"]] = new
        assert answer["id"] == threshold["id"]
        rotated_at = datetime.fromisoformat(answer["rotated_at"])
        until = datetime.fromisoformat(answer["previous_signs_until"])
        assert until - rotated_at == timedelta(hours=24)
        one = client.get(f"/orgs/acme/thresholds/{threshold['id']}", headers=_bearer(manage))
        assert "secret" not in one.json()

        assert _test(client, manage, threshold).json()["status"] == 200
        sent_at = _cross(client, ingest_key)
        watched = with_connection(
            db,
            lambda conn: watch_once(
                conn,
                allowed_hosts=RECEIVER_HOSTS,
                public_url="http://x",
                clock=lambda: sent_at + timedelta(seconds=1),
            ),
        )
        assert watched.deliveries.attempted == 1
        # A day on (the rotation set back in the database), the new signature only.
        _set_rotated_at(db, threshold, rotated_at - timedelta(hours=24, seconds=1))
        assert _test(client, manage, threshold).json()["status"] == 200
    test, crossing, after = hook.received
    assert (test.body["type"], crossing.body["type"]) == (
        "usage.threshold.test",
        "usage.threshold.crossed",
    )
    for got in (test, crossing):
        new_signature, old_signature = got.headers["webhook-signature"].split(" ")
        assert new_signature.startswith("v1,") and old_signature.startswith("v1,")
        assert _verifies(old, got) and _verifies(new, got)
    assert after.body["type"] == "usage.threshold.test"
    assert after.headers["webhook-signature"].count("v1,") == 1
    assert _verifies(new, after) and not _verifies(old, after)


def test_a_crossing_sent_a_day_after_the_rotation_carries_the_new_signature_only(
    client, db, admin_key, ingest_key
):
    """The deliverer's clock decides: its attempt a day after the rotation signs once."""
    with receiver() as hook:
        threshold = _create(client, admin_key, hook.url)
        old = threshold["secret"]
        new = _rotate(client, admin_key, threshold).json()["secret"]
        hook.secrets[threshold["id"]] = new
        sent_at = _cross(client, ingest_key)
        with_connection(
            db,
            lambda conn: watch_once(
                conn,
                allowed_hosts=RECEIVER_HOSTS,
                public_url="http://x",
                clock=lambda: sent_at + timedelta(hours=24, seconds=1),
            ),
        )
    (got,) = hook.received
    assert got.body["type"] == "usage.threshold.crossed"
    assert _verifies(new, got) and not _verifies(old, got)


def test_a_second_rotation_signs_with_the_newest_two_secrets(client, db, admin_key):
    with receiver() as hook:
        threshold = _create(client, admin_key, hook.url)
        first = threshold["secret"]
        second = _rotate(client, admin_key, threshold).json()["secret"]
        third = _rotate(client, admin_key, threshold).json()["secret"]
        hook.secrets[threshold["id"]] = third
        assert _test(client, admin_key, threshold).json()["status"] == 200
    (got,) = hook.received
    assert _verifies(third, got) and _verifies(second, got) and not _verifies(first, got)


def test_the_latest_tests_are_kept_and_go_with_their_threshold(client, db, admin_key):
    threshold = _create(client, admin_key, _CLOSED)
    sent = [_test(client, admin_key, threshold).json() for _ in range(TESTS_KEPT + 2)]
    kept = _deliveries(client, admin_key, threshold)["tests"]
    assert kept == sent[::-1][:TESTS_KEPT]
    deleted = client.delete(f"/orgs/acme/thresholds/{threshold['id']}", headers=_bearer(admin_key))
    assert deleted.status_code == 204
    assert rows(db, "threshold_tests") == []


def test_a_test_ending_after_its_threshold_is_deleted_is_not_recorded(client, db, admin_key):
    threshold = _create(client, admin_key, _CLOSED)
    assert (
        client.delete(
            f"/orgs/acme/thresholds/{threshold['id']}", headers=_bearer(admin_key)
        ).status_code
        == 204
    )
    ended = WebhookTest(
        webhook_id="msg_x", sent_at=datetime.now(UTC), status=200, error=None, duration_ms=3
    )
    recorded = with_connection(db, lambda conn: record_test(conn, "acme", threshold["id"], ended))
    assert recorded is False
    assert rows(db, "threshold_tests") == []
