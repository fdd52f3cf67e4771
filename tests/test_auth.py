"""Keys and scopes: who may call which route, for the routes that exist."""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import func, update

from api.settings import Settings
from api.storage.db import compile_statement, connect, execute_sync
from api.storage.keys import Scope
from api.storage.schema import api_keys
from api.web.app import create_app
from testkit.database import rows
from testkit.factories import llm_call, post_events
from testkit.server import ANY_AGE


@pytest.fixture(scope="module")
def keys(ingest_key, admin_key, read_key, revoked_key) -> dict[str, str]:
    return {
        "ingest": ingest_key,
        "admin": admin_key,
        "read": read_key,
        "revoked": revoked_key,
        "unknown": "usage_" + "x" * 43,
    }


@pytest.mark.parametrize(
    ("holder", "status"),
    [("ingest", 200), ("admin", 403), ("read", 403), ("revoked", 401), ("unknown", 401)],
)
def test_post_events_needs_an_ingest_key(client, db, keys, holder, status):
    response = post_events(client, keys[holder], [llm_call()])
    assert response.status_code == status, response.text
    if status != 200:
        assert response.headers["content-type"] == "application/problem+json"
        assert rows(db, "event_receipts") == []
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "authorization", [None, "", "Bearer", "Bearer  ", "Basic dXNlcjpwYXNz", "usage_abc"]
)
def test_missing_or_malformed_authorization_is_401(client, db, authorization):
    headers = {"Content-Type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    response = client.post("/events", content=b"[]", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["status"] == 401


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/schema/openapi.json"])
def test_probes_and_schema_need_no_key(client, path):
    assert client.get(path).status_code == 200


def test_a_key_is_stored_only_as_its_hash(database_url, new_key):
    created = new_key(Scope.ADMIN)
    stored = [row for row in rows(database_url, "api_keys") if row[1] == created.key_id]
    assert len(stored) == 1
    assert created.key.encode() not in stored[0][3]
    assert all(created.key not in str(value) for value in stored[0])


@pytest.mark.parametrize("method", ["HEAD", "OPTIONS", "PUT", "DELETE", "PATCH"])
@pytest.mark.parametrize("path", ["/orgs/acme/usage/llm", "/usage/llm", "/events", "/nowhere"])
def test_other_methods_without_a_key_are_answered_not_failed(client, method, path):
    """Unauthenticated OPTIONS is Litestar's Allow answer (as CORS preflights need); HEAD is
    GET without a body (so a usage route wants a key); the rest are 404/405 problems, never
    a 500."""
    response = client.request(method, path)
    if path == "/nowhere":
        assert response.status_code == 404
    elif method == "OPTIONS":
        assert response.status_code == 204
        assert "OPTIONS" in response.headers["allow"]
    elif method == "HEAD" and path != "/events":
        assert response.status_code == 401
        assert response.content == b""
    else:
        assert response.status_code == 405
        assert response.headers["content-type"] == "application/problem+json"


def test_a_revoked_key_is_refused_at_once(database_url, new_key, revoke):
    """The server caches keys it has looked up; revoking tells it."""
    created = new_key(Scope.READ, "acme")
    with _server(database_url, key_cache_seconds=3600) as client:
        assert _read(client, created.key).status_code == 200
        assert _read(client, created.key).status_code == 200  # from the cache
        assert revoke(created.key_id)
        _refused_within(client, created.key, seconds=2)


def test_a_key_revoked_by_hand_is_refused_within_the_cache_time(database_url, new_key):
    """A revocation the server is not told of (an UPDATE in SQL): the cached key keeps
    working, and is looked up again, and refused, within USAGE_KEY_CACHE_SECONDS."""
    created = new_key(Scope.READ, "acme")
    with _server(database_url, key_cache_seconds=3) as client:
        assert _read(client, created.key).status_code == 200
        revoked = time.monotonic()
        by_hand = update(api_keys).where(api_keys.c.key_id == created.key_id)
        with connect(database_url) as conn:
            execute_sync(conn, compile_statement(by_hand.values(revoked_at=func.now())))
        assert _read(client, created.key).status_code == 200  # still cached
        _refused_within(client, created.key, seconds=3 + 1)
        assert time.monotonic() - revoked > 1


@contextmanager
def _server(database_url: str, **settings: Any) -> Iterator[TestClient]:
    configured = Settings(
        database_url=database_url, rate_limit=0, auth_failure_rate=0, **ANY_AGE, **settings
    )
    with TestClient(app=create_app(configured)) as client:
        # The cache keeps nothing until it hears revocations: wait for that.
        deadline = time.monotonic() + 10
        while not client.app.state.key_cache.listening:
            assert time.monotonic() < deadline, "the key cache never started listening"
            time.sleep(0.01)
        yield client


def _read(client: TestClient, key: str):
    return client.get("/orgs/acme/usage/platform", headers={"Authorization": f"Bearer {key}"})


def _refused_within(client: TestClient, key: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while (status := _read(client, key).status_code) == 200:
        assert time.monotonic() < deadline, f"the revoked key still works after {seconds} s"
        time.sleep(0.05)
    assert status == 401
