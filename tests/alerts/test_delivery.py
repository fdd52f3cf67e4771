"""Delivering crossings (§10): a Standard Webhooks POST per crossing that a receiver on
127.0.0.1 verifies with the standardwebhooks package; retried with one webhook-id until
delivered or a day has passed; every attempt listed by GET .../deliveries; a refused target
never connected to."""

from datetime import UTC, datetime, timedelta
from itertools import accumulate
from urllib.parse import parse_qs, urlsplit

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.alerts.delivery import RETRY_AFTER
from api.alerts.watcher import EVALUATING, holding, watch_once
from api.storage.db import connect_kwargs
from testkit.database import reset, with_connection
from testkit.engine import examples
from testkit.factories import iso, llm_call, post_events
from testkit.receiver import RECEIVER_HOSTS, receiver

_PUBLIC = "https://usage.example.com"


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _create(client, key, url, **spec) -> dict:
    asked = {"section": "llm", "measure": "input_tokens", "period": "day", "limit": 150}
    answer = client.post(
        "/orgs/acme/thresholds", json=asked | spec | {"url": url}, headers=_bearer(key)
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


def _watch(db, now: datetime):
    return with_connection(
        db,
        lambda conn: watch_once(
            conn, allowed_hosts=RECEIVER_HOSTS, public_url=_PUBLIC, clock=lambda: now
        ),
    )


def _cross(client, ingest_key) -> datetime:
    """Two calls of 100 input tokens now (over the 150 of ``_create``'s threshold)."""
    now = datetime.now(UTC)
    calls = [llm_call(time=now, input_tokens=100, cached_tokens=0) for _ in range(2)]
    assert post_events(client, ingest_key, calls).status_code == 200
    return now


def test_a_crossing_is_delivered_signed_with_what_the_design_names(
    client, db, admin_key, ingest_key, read_key
):
    with receiver() as hook:
        threshold = _create(client, admin_key, hook.url, tz="Europe/Berlin")
        hook.secrets[threshold["id"]] = threshold["secret"]
        sent_at = _cross(client, ingest_key)
        watched = _watch(db, sent_at + timedelta(seconds=1))
        assert [c.value for c in watched.evaluation.crossings] == [200]
        assert (watched.deliveries.attempted, watched.deliveries.delivered) == (1, 1)
        assert _watch(db, sent_at + timedelta(hours=1)).deliveries.attempted == 0
    (got,) = hook.received
    assert got.verified and got.answered == 200
    body = got.body
    period = body["period"]
    assert {k: v for k, v in body.items() if k not in ("period", "detected_at", "page_url")} == {
        "type": "usage.threshold.crossed",
        "org": "acme",
        "threshold_id": threshold["id"],
        "section": "llm",
        "measure": "input_tokens",
        "limit": 150.0,
        "value": 200.0,
    }
    assert period["tz"] == "Europe/Berlin"
    assert period["start"] == threshold["current_period"]["start"]
    assert period["end"] == threshold["current_period"]["end"]
    assert body["detected_at"] == iso(sent_at + timedelta(seconds=1))
    page = urlsplit(body["page_url"])
    assert f"{page.scheme}://{page.netloc}" == _PUBLIC
    assert page.path == "/organizations/acme/activity/usage"
    assert parse_qs(page.query) == {
        "start": [period["start"]],
        "end": [period["end"]],
        "tz": ["Europe/Berlin"],
    }
    listed = client.get(
        f"/orgs/acme/thresholds/{threshold['id']}/deliveries", headers=_bearer(read_key)
    )
    assert listed.status_code == 200, listed.text
    (delivery,) = listed.json()["deliveries"]
    assert delivery["webhook_id"] == got.webhook_id
    assert delivery["state"] == "delivered" and delivery["value"] == 200
    assert [(a["attempt"], a["status"], a["error"]) for a in delivery["attempts"]] == [
        (1, 200, None)
    ]


# When each attempt falls due after the first: the retry schedule, summed.
_DUE_AFTER = [timedelta(0), *accumulate(RETRY_AFTER)]


def test_the_retries_end_within_a_day():
    assert _DUE_AFTER[-1] <= timedelta(hours=24)


@settings(
    max_examples=examples(15),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    failures=st.lists(st.integers(0, len(_DUE_AFTER) + 1), min_size=1, max_size=3),
    early=st.booleans(),
)
def test_a_receiver_failing_at_random_gets_each_crossing_with_one_webhook_id(
    client, database_url, admin_key, ingest_key, failures, early
):
    """Each threshold's receiver fails its first n attempts (500, 503 or 429 in turn):
    delivered at the (n+1)-th if the schedule has one, else given up after the last; a pass
    before an attempt is due sends nothing."""
    reset(database_url)
    with receiver() as hook:
        fails = {}
        for count in failures:
            threshold = _create(client, admin_key, hook.url)
            hook.secrets[threshold["id"]] = threshold["secret"]
            fails[threshold["id"]] = count
        hook.answer = lambda body, nth: (
            (500, 503, 429)[nth % 3] if nth < fails[body["threshold_id"]] else 200
        )
        detected = _cross(client, ingest_key) + timedelta(seconds=1)
        for due in _DUE_AFTER:
            if early:
                before = _watch(database_url, detected + due - timedelta(seconds=1))
                assert before.deliveries.attempted == 0
            _watch(database_url, detected + due)
        _watch(database_url, detected + timedelta(days=2))
    for threshold_id, count in fails.items():
        got = [r for r in hook.received if r.body["threshold_id"] == threshold_id]
        assert all(r.verified for r in got)
        assert len({r.webhook_id for r in got}) == 1
        delivered = [r for r in got if r.answered == 200]
        assert len(got) == min(count + 1, len(_DUE_AFTER))
        assert len(delivered) == (1 if count < len(_DUE_AFTER) else 0)


def test_a_name_resolving_to_loopback_is_refused_before_connecting(
    client, db, admin_key, ingest_key, read_key
):
    """localhost resolves to a loopback address, and only 127.0.0.1 is listed: the crossing's
    attempt is refused, and the receiver listening there sees no connection."""
    with receiver() as hook:
        # https: plain http goes to listed hosts only, and the name is checked at delivery.
        url = hook.url.replace("http://127.0.0.1", "https://localhost")
        threshold = _create(client, admin_key, url)
        detected = _cross(client, ingest_key) + timedelta(seconds=1)
        watched = _watch(db, detected)
    assert (watched.deliveries.attempted, watched.deliveries.delivered) == (1, 0)
    assert hook.received == []
    listed = client.get(
        f"/orgs/acme/thresholds/{threshold['id']}/deliveries", headers=_bearer(read_key)
    ).json()
    (delivery,) = listed["deliveries"]
    (attempt,) = delivery["attempts"]
    assert attempt["status"] is None and attempt["error"].startswith("refused: localhost")
    assert delivery["state"] == "pending"
    assert delivery["next_attempt_at"] == iso(detected + RETRY_AFTER[0])


def test_one_watcher_at_a_time(db):
    """While one session holds the watchers' lock, another's pass is skipped."""

    async def scenario(conn):
        async with (
            await psycopg.AsyncConnection.connect(db, **connect_kwargs()) as other,
            holding(conn, EVALUATING) as first,
        ):
            return first, await watch_once(other, allowed_hosts=RECEIVER_HOSTS, public_url=_PUBLIC)

    first, second = with_connection(db, scenario)
    assert first is True and second is None
    assert _watch(db, datetime.now(UTC)) is not None  # let go at the block's end


def test_a_crossing_that_cannot_be_sent_fails_alone(client, db, admin_key, ingest_key):
    """A stored URL the sender cannot use (written before today's checks, say) is a failed
    attempt of its own crossing; the others are delivered."""
    with receiver() as hook:
        good = _create(client, admin_key, hook.url)
        hook.secrets[good["id"]] = good["secret"]
        bad = _create(client, admin_key, hook.url)
        with psycopg.connect(db, **connect_kwargs()) as conn:
            conn.execute(
                "UPDATE thresholds SET url = %s WHERE threshold_id = %s",
                ("https://1.1.1.1 \u00e9/x", bad["id"]),
            )
        detected = _cross(client, ingest_key) + timedelta(seconds=1)
        watched = _watch(db, detected)
    assert (watched.deliveries.attempted, watched.deliveries.delivered) == (2, 1)
    assert [r.body["threshold_id"] for r in hook.delivered()] == [good["id"]]
