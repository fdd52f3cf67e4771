"""API keys over HTTP (DESIGN §13): who may create, list, read and revoke which key, the
bodies refused, expiry and revocation on every server, and the last use kept to the minute."""

import sys
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from prometheus_client import REGISTRY

from api.storage.availability import Database
from api.storage.keys import Scope, create_key, live_key
from api.web.routes import keys as keys_routes
from testkit.database import with_connection
from testkit.server import live_server

TARGETS = ["read acme", "manage acme", "read globex", "manage globex", "admin", "ingest"]
# The status each caller gets: creating a key of each target scope, reading and revoking an
# existing key of each, and listing.
_ALL_401 = {"POST": [401] * 6, "GET": [401] * 6, "DELETE": [401] * 6, "LIST": 401}
_ALL_403 = {"POST": [403] * 6, "GET": [403] * 6, "DELETE": [403] * 6, "LIST": 403}
TABLE = {
    #                          read acme, manage acme, read globex, manage globex, admin, ingest
    "admin": {
        "POST": [201, 201, 201, 201, 201, 201],
        "GET": [200, 200, 200, 200, 200, 200],
        "DELETE": [204, 204, 204, 204, 204, 204],
        "LIST": 200,
    },
    "manage acme": {
        "POST": [201, 201, 403, 403, 403, 403],
        "GET": [200, 200, 404, 404, 404, 404],
        "DELETE": [204, 204, 404, 404, 404, 404],
        "LIST": 200,
    },
    "manage globex": {
        "POST": [403, 403, 201, 201, 403, 403],
        "GET": [404, 404, 200, 200, 404, 404],
        "DELETE": [404, 404, 204, 204, 404, 404],
        "LIST": 200,
    },
    "read acme": _ALL_403,
    "ingest": _ALL_403,
    "expired admin": _ALL_401,
    "revoked admin": _ALL_401,
    "none": _ALL_401,
}


def _new(database_url: str, target: str, **fields) -> tuple[str, str]:
    """A new key of ``target`` ("read acme", "admin"...): its id and secret."""
    scope, _, org = target.partition(" ")
    created = with_connection(
        database_url, lambda conn: create_key(conn, Scope(scope), org or None, **fields)
    )
    return created.key_id, created.key


@pytest.fixture(scope="module")
def callers(database_url, client) -> dict[str, dict[str, str]]:
    """Each caller's Authorization header."""
    found = {}
    for caller in ["admin", "manage acme", "manage globex", "read acme", "ingest"]:
        found[caller] = _new(database_url, caller)[1]
    past = datetime.now(UTC) - timedelta(seconds=1)
    found["expired admin"] = _new(database_url, "admin", expires_at=past)[1]
    key_id, found["revoked admin"] = _new(database_url, "admin")
    admin = {"Authorization": f"Bearer {found['admin']}"}
    assert client.delete(f"/keys/{key_id}", headers=admin).status_code == 204
    headers = {caller: {"Authorization": f"Bearer {key}"} for caller, key in found.items()}
    return headers | {"none": {}}


def _body(target: str) -> dict:
    scope, _, org = target.partition(" ")
    return {"scope": scope, "name": f"for {target}"} | ({"org": org} if org else {})


@pytest.mark.parametrize("caller", list(TABLE))
@pytest.mark.parametrize("action", ["POST", "GET", "DELETE"])
@pytest.mark.parametrize("target", TARGETS)
def test_every_caller_on_every_key_as_the_table_says(
    client, database_url, callers, caller, action, target
):
    expected = TABLE[caller][action][TARGETS.index(target)]
    headers = callers[caller]
    if action == "POST":
        response = client.post("/keys", json=_body(target), headers=headers)
    else:
        key_id, _ = _new(database_url, target)
        response = client.request(action, f"/keys/{key_id}", headers=headers)
    assert response.status_code == expected, response.text
    if expected >= 400:
        assert response.headers["content-type"] == "application/problem+json"
        if action != "POST":  # the key is untouched
            assert with_connection(database_url, lambda conn: live_key(conn, key_id))
        return
    if action == "POST":
        created = response.json()
        scope, _, org = target.partition(" ")
        assert (created["scope"], created["org"], created["name"]) == (
            scope,
            org or None,
            f"for {target}",
        )
        # It is never shown again, and the key it answers works (read first: a use is
        # written as last_used_at within a second).
        read = client.get(f"/keys/{created['id']}", headers=headers).json()
        assert "key" not in read and read == {k: v for k, v in created.items() if k != "key"}
        used = client.get("/keys", headers={"Authorization": f"Bearer {created['key']}"})
        assert used.status_code in (200, 403)  # known (not 401): 403 for read and ingest
    elif action == "DELETE":
        assert with_connection(database_url, lambda conn: live_key(conn, key_id)) is None
        assert client.get(f"/keys/{key_id}", headers=headers).status_code == 404
    else:
        assert response.json()["id"] == key_id


@pytest.mark.parametrize("caller", list(TABLE))
def test_a_list_holds_the_keys_the_caller_manages(client, database_url, callers, caller):
    expected = TABLE[caller]["LIST"]
    response = client.get("/keys", headers=callers[caller])
    assert response.status_code == expected
    if expected != 200:
        return
    listed = response.json()["keys"]
    assert listed and all("key" not in key for key in listed)
    orgs = {key["org"] for key in listed}
    if caller == "admin":
        assert {None, "acme", "globex"} <= orgs
    else:
        assert orgs == {caller.split()[1]}
        assert {key["scope"] for key in listed} <= {"read", "manage"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"scope": "read"}, "org"),
        ({"scope": "ingest", "org": "acme"}, "org"),
        ({"scope": "read", "org": "Acme"}, "org"),
        ({"scope": "owner"}, "scope"),
        ({"scope": "admin", "name": ""}, "name"),
        ({"scope": "admin", "name": "x" * 201}, "name"),
        ({"scope": "admin", "expires_at": "2020-01-01T00:00:00Z"}, "expires_at"),
        ({"scope": "admin", "expires_at": "2999-01-01T00:00:00"}, "expires_at"),
        ({"scope": "admin", "expires_at": "soon"}, "expires_at"),
        ({"scope": "admin", "extra": 1}, "extra"),
    ],
)
def test_a_body_that_is_no_key_is_400_naming_the_field(client, callers, body, field):
    response = client.post("/keys", json=body, headers=callers["admin"])
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["field"] == field


def test_a_key_given_twice_in_the_body_is_400(client, callers):
    body = b'{"scope": "read", "org": "acme", "scope": "admin"}'
    headers = {**callers["manage acme"], "Content-Type": "application/json"}
    response = client.post("/keys", content=body, headers=headers)
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "scope"


def test_a_revocation_takes_one_connection_to_find_and_revoke_the_key(
    client, database_url, callers, monkeypatch
):
    """A request holds one of the pool's connections at most: two in turn would wait for
    the pool twice, and a second wait can time out (503) after the key was found."""
    taken = []
    connection = Database.connection

    def counted(database):
        # The route's own checkouts: the key cache's and the writers' run in the same process.
        if sys._getframe(1).f_globals["__name__"] == keys_routes.__name__:
            taken.append(database)
        return connection(database)

    monkeypatch.setattr(Database, "connection", counted)
    key_id, _ = _new(database_url, "read acme")
    assert client.delete(f"/keys/{key_id}", headers=callers["admin"]).status_code == 204
    assert len(taken) == 1
    assert with_connection(database_url, lambda conn: live_key(conn, key_id)) is None


def test_options_lists_every_method_of_each_path(client):
    """Litestar 2 listed one handler's methods only (litestar#4169)."""
    listed = client.options("/keys")
    assert listed.status_code == 204 and listed.headers["allow"] == "GET, OPTIONS, POST"
    assert client.options("/keys/0123456789abcdef").headers["allow"] == "DELETE, GET, OPTIONS"


def test_an_expired_key_is_401_saying_it_expired(client, callers):
    expires_at = datetime.now(UTC) + timedelta(seconds=2)
    created = client.post(
        "/keys",
        json={"scope": "read", "org": "acme", "expires_at": expires_at.isoformat()},
        headers=callers["admin"],
    ).json()
    assert created["expires_at"] is not None
    bearer = {"Authorization": f"Bearer {created['key']}"}
    assert client.get("/orgs/acme/usage/llm", headers=bearer).status_code == 200
    time.sleep(max((expires_at - datetime.now(UTC)).total_seconds(), 0) + 0.01)
    refused = client.get("/orgs/acme/usage/llm", headers=bearer)
    assert refused.status_code == 401
    assert refused.json()["detail"].startswith("the API key expired at ")


def test_expiry_and_revocation_reach_every_server(database_url, callers):
    """Two server processes: a key expires on both at its time, and one revoked on one is
    refused by the other (told by the database, in well under a second on an idle
    machine; bounded here for a loaded one)."""
    with live_server(database_url) as first, live_server(database_url) as second:
        expires_at = datetime.now(UTC) + timedelta(seconds=3)
        _, expiring = _new(database_url, "read acme", expires_at=expires_at)
        revoked_id, revoked = _new(database_url, "read acme")
        for key in (expiring, revoked):
            for base in (first, second):
                answer = httpx.get(f"{base}/orgs/acme/usage/llm", headers=_bearer(key))
                assert answer.status_code == 200, answer.text
        deleted = httpx.delete(f"{first}/keys/{revoked_id}", headers=callers["admin"])
        assert deleted.status_code == 204
        _refused_within(second, revoked, seconds=5)
        time.sleep(max((expires_at - datetime.now(UTC)).total_seconds(), 0) + 0.01)
        for base in (first, second):
            answer = httpx.get(f"{base}/orgs/acme/usage/llm", headers=_bearer(expiring))
            assert answer.status_code == 401 and "expired" in answer.json()["detail"]


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _refused_within(base_url: str, key: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while httpx.get(f"{base_url}/orgs/acme/usage/llm", headers=_bearer(key)).status_code != 401:
        assert time.monotonic() < deadline, "still served"
        time.sleep(0.05)


def test_the_last_use_moves_at_most_once_a_minute(client, database_url, callers):
    key_id, key = _new(database_url, "read acme")
    writes = _last_use_writes()
    started = datetime.now(UTC)
    for _ in range(1000):
        assert client.get("/orgs/acme/usage/platform", headers=_bearer(key)).status_code == 200
    ended = datetime.now(UTC)
    minutes = {started.replace(second=0, microsecond=0), ended.replace(second=0, microsecond=0)}
    deadline = time.monotonic() + 10
    while (found := client.get(f"/keys/{key_id}", headers=callers["admin"]).json())[
        "last_used_at"
    ] is None or datetime.fromisoformat(found["last_used_at"]) < max(minutes):
        assert time.monotonic() < deadline, found
        time.sleep(0.1)
    assert datetime.fromisoformat(found["last_used_at"]) in minutes
    # This key's, and at most one more a minute for each key the other reads used.
    assert _last_use_writes() - writes <= 2 * len(minutes)


def _last_use_writes() -> float:
    return REGISTRY.get_sample_value("usage_key_last_use_writes_total") or 0.0
