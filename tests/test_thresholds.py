"""Thresholds as stored (§10): created with a new secret each, listed per organization in
creation order, found and deleted by id within their organization only, their attempts with
them whenever an attempt ends; and as the API takes and answers them."""

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from typing import get_args

import psycopg
import pytest

from api.storage import thresholds as thresholds_storage
from api.storage.db import connect_kwargs
from api.storage.keys import Scope
from api.storage.thresholds import (
    Attempt,
    create_threshold,
    delete_threshold,
    find_signed_threshold,
    find_threshold,
    list_thresholds,
    record_attempt,
)
from api.web.routes.thresholds import MEASURES, Measure
from testkit.database import rows, rows_as_they_are, with_connection
from testkit.engine import CITUS

_SPEC = {
    "section": "llm",
    "measure": "input_tokens",
    "period": "day",
    "tz": "Europe/Berlin",
    "limit": 1_000_000.0,
    "filters": {"model": ["gpt-5"]},
    "url": "https://hooks.example.com/usage",
}


def test_a_threshold_is_kept_per_organization(db):
    async def scenario(conn):
        first, first_secret = await create_threshold(conn, "acme", **_SPEC)
        second, second_secret = await create_threshold(conn, "acme", **{**_SPEC, "limit": 5.0})
        other, _ = await create_threshold(conn, "globex", **_SPEC)
        assert first_secret != second_secret and first.threshold_id != second.threshold_id
        assert first.filters == {"model": ["gpt-5"]} and first.limit == 1_000_000.0
        listed = await list_thresholds(conn, "acme")
        assert [t.threshold_id for t in listed] == [first.threshold_id, second.threshold_id]
        assert await find_threshold(conn, "acme", other.threshold_id) is None
        assert await find_threshold(conn, "globex", other.threshold_id) == other
        assert await find_signed_threshold(conn, "acme", other.threshold_id) is None
        found, signing = await find_signed_threshold(conn, "acme", second.threshold_id)
        assert found == second and signing.secret == second_secret
        assert (signing.previous, signing.rotated_at) == (None, None)
        assert not await delete_threshold(conn, "acme", other.threshold_id)
        assert await delete_threshold(conn, "acme", first.threshold_id)
        assert not await delete_threshold(conn, "acme", first.threshold_id)
        return [t.threshold_id for t in await list_thresholds(conn, "acme")], second

    remaining, second = with_connection(db, scenario)
    assert remaining == [second.threshold_id]
    assert ("globex",) in rows(db, "orgs")


_HOOK = "http://127.0.0.1:9/hook"  # listed for the tests' server; nothing listens there
_ASKED = {"section": "llm", "measure": "input_tokens", "period": "day", "limit": 1000, "url": _HOOK}


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_a_manage_key_creates_reads_and_deletes_its_organizations_thresholds(
    client, db, new_key, read_key
):
    manage = new_key(Scope.MANAGE, "acme").key
    created = client.post("/orgs/acme/thresholds", json=_ASKED, headers=_bearer(manage))
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["secret"].startswith("whsec_") and body["tz"] == "UTC"
    assert body["filters"] == {}
    listed = client.get("/orgs/acme/thresholds", headers=_bearer(read_key)).json()
    assert [t["id"] for t in listed["thresholds"]] == [body["id"]]
    assert "secret" not in listed["thresholds"][0]
    one = client.get(f"/orgs/acme/thresholds/{body['id']}", headers=_bearer(manage))
    assert one.json() == {k: v for k, v in body.items() if k != "secret"}
    refused = client.delete(f"/orgs/acme/thresholds/{body['id']}", headers=_bearer(read_key))
    assert refused.status_code == 403
    gone = client.delete(f"/orgs/acme/thresholds/{body['id']}", headers=_bearer(manage))
    assert gone.status_code == 204
    again = client.get(f"/orgs/acme/thresholds/{body['id']}", headers=_bearer(manage))
    assert again.status_code == 404


def test_keys_of_another_organization_see_no_thresholds(client, db, new_key, admin_key):
    created = client.post("/orgs/acme/thresholds", json=_ASKED, headers=_bearer(admin_key))
    assert created.status_code == 201, created.text
    other = new_key(Scope.MANAGE, "globex").key
    for answer in (
        client.get("/orgs/acme/thresholds", headers=_bearer(other)),
        client.get(f"/orgs/acme/thresholds/{created.json()['id']}", headers=_bearer(other)),
        client.post("/orgs/acme/thresholds", json=_ASKED, headers=_bearer(other)),
    ):
        assert answer.status_code == 404
    assert len(rows(db, "thresholds")) == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"measure": "cpu_core_hours"}, "measure"),
        ({"section": "compute", "measure": "input_tokens"}, "measure"),
        ({"tz": "Mars/Olympus"}, "tz"),
        ({"filters": {"agent": ["a1"]}}, "filters.agent"),
        ({"filters": {"identity": ["robot:x"]}}, "filters.identity"),
        ({"url": "http://example.com/hook"}, "url"),
        ({"url": "https://10.0.0.1/hook"}, "url"),
        ({"url": "https://169.254.169.254/latest/meta-data/"}, "url"),
        ({"url": "https://[::1]/hook"}, "url"),
        ({"url": "https://2130706433/hook"}, "url"),  # 127.0.0.1, as resolvers read it
        ({"url": "https://0x7f.1/hook"}, "url"),
        ({"url": "https://exa mple.com/hook"}, "url"),
        ({"url": "https://example..com/hook"}, "url"),
        ({"url": "https://192.0.0.8/hook"}, "url"),  # IETF protocol assignments
        ({"url": "https://192.88.99.1/hook"}, "url"),  # the 6to4 relay anycast
        ({"url": "https://[3fff::1]/hook"}, "url"),  # IPv6 documentation
        ({"limit": "10"}, "limit"),  # a string is not a number
        ({"limit": 10.5}, "limit"),  # input tokens count: whole numbers
        ({"colour": "red"}, "colour"),
        ({"filters": {"model": "gpt-5"}}, "filters.model"),
    ],
)
def test_a_threshold_the_section_cannot_watch_or_a_refused_url_is_a_400(
    client, db, admin_key, change, field
):
    answer = client.post(
        "/orgs/acme/thresholds", json={**_ASKED, **change}, headers=_bearer(admin_key)
    )
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert [error["field"] for error in answer.json()["errors"]] == [field]
    assert rows(db, "thresholds") == []


@pytest.mark.parametrize(
    "change", [{"limit": 0}, {"limit": -5}, {"period": "hour"}, {"colour": "red"}, {"url": 7}]
)
def test_a_malformed_threshold_is_a_400(client, db, admin_key, change):
    answer = client.post(
        "/orgs/acme/thresholds", json={**_ASKED, **change}, headers=_bearer(admin_key)
    )
    assert answer.status_code == 400, answer.text
    assert rows(db, "thresholds") == []


def test_options_lists_every_method_of_each_path(client):
    """Litestar 2 listed one handler's methods only (litestar#4169)."""
    assert client.options("/orgs/acme/thresholds").headers["allow"] == "GET, OPTIONS, POST"
    assert client.options("/orgs/acme/thresholds/thr_1").headers["allow"] == "DELETE, GET, OPTIONS"


def test_the_documented_measures_are_the_sections_summary_fields():
    assert set(get_args(Measure)) == {m for measures in MEASURES.values() for m in measures}


def test_a_manage_key_reads_its_organizations_usage_only(client, db, new_key):
    manage = new_key(Scope.MANAGE, "acme").key
    client.post("/orgs/acme/thresholds", json=_ASKED, headers=_bearer(manage))  # acme exists
    assert client.get("/orgs/acme/usage/llm", headers=_bearer(manage)).status_code == 200
    assert client.get("/orgs/globex/usage/llm", headers=_bearer(manage)).status_code == 404
    assert client.get("/usage/llm", headers=_bearer(manage)).status_code == 403


@pytest.mark.parametrize("path", ["/%00", "/thr_%00", "/%00/deliveries", "/x" * 300])
def test_an_id_that_names_no_threshold_is_a_404(client, db, admin_key, path):
    for method in ("GET", "DELETE"):
        if method == "DELETE" and path.endswith("deliveries"):
            continue
        answer = client.request(method, f"/orgs/acme/thresholds{path}", headers=_bearer(admin_key))
        assert answer.status_code == 404, (method, answer.text)


def test_a_url_with_a_nul_is_a_400(client, db, admin_key):
    asked = {**_ASKED, "url": "https://hooks.example.com/\u0000"}
    answer = client.post("/orgs/acme/thresholds", json=asked, headers=_bearer(admin_key))
    assert answer.status_code == 400 and answer.json()["errors"][0]["field"] == "url"


def test_an_organization_has_at_most_max_per_org_thresholds(client, db, admin_key, monkeypatch):
    monkeypatch.setattr(thresholds_storage, "MAX_PER_ORG", 2)
    post = lambda org: client.post(  # noqa: E731
        f"/orgs/{org}/thresholds", json=_ASKED, headers=_bearer(admin_key)
    )
    assert [post("acme").status_code for _ in range(3)] == [201, 201, 409]
    refused = post("acme")
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert "2 thresholds" in refused.json()["detail"]
    assert post("globex").status_code == 201
    assert len(rows(db, "thresholds")) == 3


def test_an_unknown_organization_has_no_thresholds_to_list(client, db, admin_key):
    answer = client.get("/orgs/nobody-here/thresholds", headers=_bearer(admin_key))
    assert answer.status_code == 404, answer.text


def _created(client, key, **change) -> dict:
    answer = client.post("/orgs/acme/thresholds", json={**_ASKED, **change}, headers=_bearer(key))
    assert answer.status_code == 201, answer.text
    return answer.json()


_NESTED = 1_000


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"[" * _NESTED + b"]" * _NESTED, "body"),
        (b'{"a":' * _NESTED + b"1" + b"}" * _NESTED, "a"),
        (b'{"filters": {"model": ' + b"[" * _NESTED + b"]" * _NESTED + b"}}", "filters.model[0]"),
        (
            json.dumps({**_ASKED, "url": "x"})[:-1].encode() + b', "url": "https://a.example/"}',
            "url",
        ),
        (
            json.dumps({**_ASKED, "filters": {"model": ["a"]}})[:-2].encode() + b', "model": []}}',
            "filters.model",
        ),
        (json.dumps(_ASKED).replace("1000", "1e400").encode(), "limit"),  # no float is that big
        (b'{"section": "llm", "url": "\xff"}', None),  # not UTF-8
        (b"", None),
        (b"{", None),
        (json.dumps(_ASKED).encode() + b" {}", None),
    ],
)
def test_any_body_is_a_problem_naming_what_is_wrong(client, db, admin_key, body, field):
    """A body nested 1,000 deep was a 500 (POST /events answered 400 for it); a key given
    twice was read last-wins, which lets a URL past a proxy that checks the first."""
    answer = client.post(
        "/orgs/acme/thresholds",
        content=body,
        headers={**_bearer(admin_key), "Content-Type": "application/json"},
    )
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    problem = answer.json()
    assert problem["status"] == 400 and problem["detail"]
    assert [error["field"] for error in problem.get("errors", [{"field": None}])] == [field]
    assert rows(db, "thresholds") == []


def test_limits_answer_as_the_measure_counts(client, db, admin_key):
    """Integers for the measures that count (tokens, requests, threads, messages)."""
    tokens = client.post(
        "/orgs/acme/thresholds", json={**_ASKED, "limit": 5_000_000}, headers=_bearer(admin_key)
    )
    assert '"limit":5000000,' in tokens.text and tokens.json()["limit"] == 5_000_000
    assert isinstance(tokens.json()["current_period"]["value"], int)
    hours = _created(client, admin_key, section="compute", measure="cpu_core_hours", limit=2.5)
    assert hours["limit"] == 2.5
    listed = client.get("/orgs/acme/thresholds", headers=_bearer(admin_key)).json()
    assert [type(t["limit"]) for t in listed["thresholds"]] == [int, float]


def test_a_crossings_value_answers_as_the_measure_counts(client, db, admin_key):
    threshold = _created(client, admin_key)
    with psycopg.connect(db, **connect_kwargs()) as conn:
        conn.execute(
            "INSERT INTO threshold_crossings (org_id, threshold_id, period_start, period_end,"
            " value, detected_at, webhook_id) VALUES ('acme', %s, now(), now(), 1200, now(), 'm')",
            [threshold["id"]],
        )
    path = f"/orgs/acme/thresholds/{threshold['id']}/deliveries"
    answer = client.get(path, headers=_bearer(admin_key))
    assert '"value":1200,' in answer.text


@pytest.mark.parametrize("limit", ["1e3", "10.0", "+5", " 5", "0x10", "5&limit=1e3"])
def test_a_deliveries_limit_is_digits(client, db, admin_key, limit):
    threshold = _created(client, admin_key)
    path = f"/orgs/acme/thresholds/{threshold['id']}/deliveries"
    assert client.get(f"{path}?limit=5", headers=_bearer(admin_key)).status_code == 200
    answer = client.get(f"{path}?limit={limit}", headers=_bearer(admin_key))
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")


_SLACK = "https://hooks.slack.com/services/T0001/B0001/XXXXXXXXXXXXXXXXXXXXXXXX"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (_SLACK, "https://hooks.slack.com"),
        ("https://Hooks.Example.com:8443/in?token=s3cret#x", "https://hooks.example.com"),
        ("https://[2606:4700:4700::1111]:8443/in/s3cret", "https://[2606:4700:4700::1111]"),
    ],
)
def test_read_keys_see_a_webhook_urls_scheme_and_host_only(
    client, db, new_key, admin_key, read_key, url, shown
):
    """Such URLs are often credentials: Slack's and Teams' incoming webhooks are."""
    manage = new_key(Scope.MANAGE, "acme").key
    threshold = _created(client, manage, url=url)
    assert threshold["url"] == url
    one, every = f"/orgs/acme/thresholds/{threshold['id']}", "/orgs/acme/thresholds"
    for key, expected in ((read_key, shown), (manage, url), (admin_key, url)):
        assert client.get(one, headers=_bearer(key)).json()["url"] == expected
        assert client.get(every, headers=_bearer(key)).json()["thresholds"][0]["url"] == expected


async def _crossing(conn: psycopg.AsyncConnection, org: str, threshold_id: str) -> datetime:
    """A crossing of the threshold, due: what an attempt is made for."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    await conn.execute(
        "INSERT INTO threshold_crossings (org_id, threshold_id, period_start, period_end, value,"
        " detected_at, webhook_id, next_attempt_at) VALUES (%s, %s, %s, %s, 5, now(), 'm', now())",
        [org, threshold_id, start, start + timedelta(days=1)],
    )
    return start


def _attempt(number: int = 1) -> Attempt:
    return Attempt(attempt=number, attempted_at=datetime.now(UTC), status=200, error=None)


# Whether a session waits for a lock another holds: on Citus the wait is on a worker, which
# citus_lock_waits reports by the coordinator session's global pid.
_WAITING = (
    "SELECT EXISTS (SELECT FROM citus_lock_waits WHERE waiting_gpid = %s)"
    if CITUS
    else "SELECT cardinality(pg_blocking_pids(%s)) > 0"
)


async def _session(conn: psycopg.AsyncConnection) -> int:
    """The session's id as _WAITING takes it."""
    cursor = await conn.execute(
        "SELECT citus_backend_gpid()" if CITUS else "SELECT pg_backend_pid()"
    )
    return (await cursor.fetchone())[0]


async def _waits_for_a_lock(conn: psycopg.AsyncConnection, session: int) -> None:
    """Until the session ``session`` waits for a lock another holds (30 s at most: a busy
    machine is slow, not wrong)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if (await (await conn.execute(_WAITING, [session])).fetchone())[0]:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"session {session} never waited for a lock")


def _history(db: str) -> list:
    return rows_as_they_are(db, "threshold_crossings") + rows_as_they_are(
        db, "threshold_deliveries"
    )


def test_an_attempt_that_ends_after_its_threshold_is_deleted_is_not_recorded(db):
    async def scenario(conn):
        threshold, _ = await create_threshold(conn, "acme", **_SPEC)
        start = await _crossing(conn, "acme", threshold.threshold_id)
        assert await record_attempt(
            conn,
            "acme",
            threshold.threshold_id,
            start,
            _attempt(),
            delivered=False,
            next_attempt_at=datetime.now(UTC),
        )
        assert await delete_threshold(conn, "acme", threshold.threshold_id)
        return await record_attempt(
            conn,
            "acme",
            threshold.threshold_id,
            start,
            _attempt(2),
            delivered=True,
            next_attempt_at=None,
        )

    assert with_connection(db, scenario) is False
    assert _history(db) == []


def test_a_deletion_while_an_attempt_is_recorded_leaves_none_of_it(db):
    """The attempt's record is under way (its transaction open) when the deletion comes: the
    deletion waits for it, then deletes it too. (Deleting the attempts before the crossings
    left this one behind.)"""

    async def scenario(conn):
        threshold, _ = await create_threshold(conn, "acme", **_SPEC)
        start = await _crossing(conn, "acme", threshold.threshold_id)
        async with await psycopg.AsyncConnection.connect(db, **connect_kwargs()) as other:
            deleter = await _session(other)
            async with conn.transaction():
                assert await record_attempt(
                    conn,
                    "acme",
                    threshold.threshold_id,
                    start,
                    _attempt(),
                    delivered=True,
                    next_attempt_at=None,
                )
                deleting = asyncio.create_task(
                    delete_threshold(other, "acme", threshold.threshold_id)
                )
                await _waits_for_a_lock(conn, deleter)
            return await deleting

    assert with_connection(db, scenario) is True
    assert _history(db) == []


def test_an_attempt_recorded_while_its_threshold_is_deleted_is_not(db):
    """The deletion is under way (its transaction open) when the attempt ends: the record
    waits for it, then finds no crossing and records nothing. (An attempt inserted before
    its crossing was updated was left behind.)"""

    async def scenario(conn):
        threshold, _ = await create_threshold(conn, "acme", **_SPEC)
        start = await _crossing(conn, "acme", threshold.threshold_id)
        async with await psycopg.AsyncConnection.connect(db, **connect_kwargs()) as other:
            recorder = await _session(conn)
            async with other.transaction():
                assert await delete_threshold(other, "acme", threshold.threshold_id)
                recording = asyncio.create_task(
                    record_attempt(
                        conn,
                        "acme",
                        threshold.threshold_id,
                        start,
                        _attempt(),
                        delivered=True,
                        next_attempt_at=None,
                    )
                )
                await _waits_for_a_lock(other, recorder)
            return await recording

    assert with_connection(db, scenario) is False
    assert _history(db) == []
