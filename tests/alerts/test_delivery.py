"""Delivering crossings (§10): a Standard Webhooks POST per crossing that a receiver on
127.0.0.1 verifies with the standardwebhooks package; retried with one webhook-id until
delivered or a day has passed; every attempt listed by GET .../deliveries; a refused target
never connected to; fair across organizations and hosts, a receiver that never answers
holding up no other."""

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from urllib.parse import parse_qs, urlsplit

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.alerts.delivery import DEFAULT_BOUNDS, RETRY_AFTER, Bounds
from api.alerts.watcher import (
    EVALUATING,
    Watcher,
    deliver_once,
    evaluate_once,
    holding,
    watch_once,
)
from api.storage.availability import Database
from api.storage.db import connect_kwargs
from testkit.database import reset, with_connection
from testkit.engine import examples
from testkit.factories import iso, llm_call, post_events
from testkit.receiver import RECEIVER_HOSTS, Received, Receiver, receiver
from testkit.server import PATIENT_POOL, UNLIMITED, live_server

_PUBLIC = "https://usage.example.com"


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _create(client, key, url, org="acme", **spec) -> dict:
    asked = {"section": "llm", "measure": "input_tokens", "period": "day", "limit": 150}
    answer = client.post(
        f"/orgs/{org}/thresholds", json=asked | spec | {"url": url}, headers=_bearer(key)
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


def _verified_by(hook: Receiver, threshold: dict) -> dict:
    hook.secrets[threshold["id"]] = threshold["secret"]
    return threshold


def _watch(db, now: datetime):
    return with_connection(
        db,
        lambda conn: watch_once(
            conn, allowed_hosts=RECEIVER_HOSTS, public_url=_PUBLIC, clock=lambda: now
        ),
    )


def _cross(client, ingest_key, org="acme") -> datetime:
    """Two calls of 100 input tokens now (over the 150 of ``_create``'s threshold)."""
    now = datetime.now(UTC)
    calls = [llm_call(time=now, input_tokens=100, cached_tokens=0, org=org) for _ in range(2)]
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
        "limit": 150,
        "value": 200,
    }
    # Tokens count: whole numbers, written as integers (never 150.0).
    assert type(body["limit"]) is int and type(body["value"]) is int
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


# Every attempt to a receiver that never answers is held for the sender's whole timeout (10 s).
_HANGING = 40


def _until(done: Callable[[], bool], seconds: float = 60) -> None:
    """Polls ``done`` until it holds; the deadline is sized for a loaded machine."""
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, "not by the deadline"
        time.sleep(0.05)


def _of(hook: Receiver, threshold: dict) -> list[Received]:
    return [r for r in hook.delivered() if r.body["threshold_id"] == threshold["id"]]


def _after_detection(got: Received) -> float:
    """Seconds from the crossing's detection to the receiver's getting it."""
    return got.at - datetime.fromisoformat(got.body["detected_at"]).timestamp()


def test_one_orgs_hanging_receivers_hold_up_no_other_webhook(client, db, admin_key, ingest_key):
    """acme's many thresholds send to a receiver that accepts and never answers, and one to
    another host. While their attempts hang, acme's other host and globex, whose crossing is
    found later, each get theirs within seconds of its detection, not once the hanging ones
    time out; the hanging host never holds more than its own slots."""
    watching = {
        "USAGE_WATCH_IN_SERVER": "1",
        "USAGE_WATCH_INTERVAL": "0.5",
        "USAGE_WEBHOOK_ALLOW_HOSTS": ",".join(RECEIVER_HOSTS),
        **UNLIMITED,
        **PATIENT_POOL,
    }
    with (
        receiver(answer=lambda _body, _nth: None) as hanging,
        receiver() as answering,
        live_server(db, **watching),
    ):
        for _ in range(_HANGING):
            _verified_by(hanging, _create(client, admin_key, hanging.url))
        elsewhere = _verified_by(answering, _create(client, admin_key, answering.url))
        theirs = _verified_by(answering, _create(client, admin_key, answering.url, org="globex"))
        _cross(client, ingest_key)
        _until(lambda: hanging.hanging > 0 and _of(answering, elsewhere))
        _cross(client, ingest_key, org="globex")
        _until(lambda: _of(answering, theirs))
    # Well within the sender's 10 s per attempt: they waited for no hanging attempt.
    (got,) = _of(answering, theirs)
    assert _after_detection(got) < 5
    (got,) = _of(answering, elsewhere)
    assert _after_detection(got) < 5
    assert all(r.verified for r in hanging.received)
    assert 0 < hanging.most_hanging <= DEFAULT_BOUNDS.per_host


def test_the_due_are_attempted_in_turns_of_organizations_and_hosts(
    client, db, admin_key, ingest_key
):
    """One attempt at a time: acme's six crossings, found first (five to one host, one to
    another), do not all go before globex's one, nor the five before acme's other host's:
    every organization's first, then every organization's second, each organization's
    hosts in turn."""
    with receiver() as first, receiver() as second:
        for _ in range(5):
            _verified_by(first, _create(client, admin_key, first.url))
        elsewhere = _verified_by(second, _create(client, admin_key, second.url))
        theirs = _verified_by(second, _create(client, admin_key, second.url, org="globex"))
        acme_found = _cross(client, ingest_key) + timedelta(seconds=1)
        with_connection(db, lambda conn: evaluate_once(conn, lambda: acme_found))
        globex_found = _cross(client, ingest_key, org="globex") + timedelta(seconds=1)
        with_connection(db, lambda conn: evaluate_once(conn, lambda: globex_found))
        one_at_a_time = Bounds(in_all=1, per_org=1, per_host=1)
        delivered = with_connection(
            db,
            lambda conn: deliver_once(
                conn,
                allowed_hosts=RECEIVER_HOSTS,
                public_url=_PUBLIC,
                clock=lambda: globex_found,
                bounds=one_at_a_time,
            ),
        )
    assert (delivered.attempted, delivered.delivered) == (7, 7)
    order = [
        r.body["threshold_id"] for r in sorted(first.received + second.received, key=lambda r: r.at)
    ]
    assert order.index(theirs["id"]) < 2
    assert order.index(elsewhere["id"]) < 3


def test_a_crossing_found_wakes_the_deliverer_resting_between_passes(
    client, db, admin_key, ingest_key
):
    """The watcher's loops pass every 60 s here: a crossing its evaluator records is
    delivered at once, not at the deliverer's next pass."""
    with receiver() as hook:
        _verified_by(hook, _create(client, admin_key, hook.url))

        async def scenario(_conn):
            database = Database(db, 2)
            await database.open()
            watcher = Watcher(
                database, interval=60, allowed_hosts=RECEIVER_HOSTS, public_url=_PUBLIC
            )
            watcher.start()
            try:
                await asyncio.sleep(1)  # the loops' first passes, with nothing crossed yet
                await asyncio.to_thread(_cross, client, ingest_key)
                # The evaluator's next pass, brought forward (tried again while the loop's
                # own first one still holds the lock on a slow machine).
                while True:
                    if await watcher.evaluate() is not None:
                        break
                    await asyncio.sleep(0.1)
                await asyncio.to_thread(_until, hook.delivered, 20)
            finally:
                await watcher.stop()
                await database.close()

        with_connection(db, scenario)
    assert len(hook.delivered()) == 1
