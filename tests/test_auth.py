"""Keys and scopes: who may call which route, for the routes that exist."""

import pytest

from api.storage.keys import Scope
from testkit.database import rows
from testkit.factories import llm_call, post_events


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
