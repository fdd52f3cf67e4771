"""Thresholds as stored (§10): created with a new secret each, listed per organization in
creation order, found and deleted by id within their organization only."""

from typing import get_args

import pytest

from api.storage import thresholds as thresholds_storage
from api.storage.keys import Scope
from api.storage.thresholds import (
    create_threshold,
    delete_threshold,
    find_threshold,
    list_thresholds,
)
from api.web.routes.thresholds import MEASURES, Measure
from testkit.database import rows, with_connection

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
    one = client.get(f"/orgs/acme/thresholds/{body['id']}", headers=_bearer(read_key))
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
