"""Strings that look like SQL, markup, format strings or path tricks are data: stored and
returned verbatim wherever the API takes free text, and refused where it takes a slug."""

import pytest

from testkit.database import rows
from testkit.factories import BASE_TIME, identity, iso, llm_call, post_events, workload_allocated

HOSTILE = [
    "'; DROP TABLE llm_calls; --",
    '" OR "1"="1',
    "<script>alert(1)</script>",
    "%s %(org)s {0} ${jndi:ldap://x}",
    "../../etc/passwd",
    "Robert'); DELETE FROM orgs;--  ñ 漢字 🚀",
]
END = iso(BASE_TIME.replace(hour=6))


@pytest.mark.parametrize("text", HOSTILE)
def test_free_text_is_stored_and_returned_verbatim(client, db, ingest_key, read_key, text):
    events = [
        llm_call(who=identity(id=text, name=text), model=text, source=text, id=text),
        workload_allocated(text, agent=text),
    ]
    assert post_events(client, ingest_key, events).status_code == 200
    headers = {"Authorization": f"Bearer {read_key}"}
    llm = client.get("/orgs/acme/usage/llm", params={"end": END}, headers=headers).json()
    assert llm["by_model"][0]["model"] == text
    assert llm["top_consumers"][0]["identity"] == {"kind": "agent", "id": text, "name": text}
    compute = client.get("/orgs/acme/usage/compute", params={"end": END}, headers=headers)
    assert compute.json()["top_agents"][0]["agent"]["id"] == text
    assert [(row[1], row[2]) for row in rows(db, "llm_calls")] == [(text, text)]
    assert len(rows(db, "orgs")) == 1


@pytest.mark.parametrize("text", HOSTILE)
def test_slugs_and_parameters_refuse_them(client, db, ingest_key, admin_key, text):
    refused = post_events(client, ingest_key, [llm_call(org=text)])
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "subject"
    headers = {"Authorization": f"Bearer {admin_key}"}
    for path, params in (
        (f"/orgs/{text}/usage/llm", {}),
        ("/orgs/acme/usage/llm", {"range": text}),
        ("/orgs/acme/usage/llm", {"bucket": text}),
        ("/orgs/acme/usage/llm", {"start": text, "end": END}),
        ("/usage/llm", {"top": text}),
    ):
        response = client.get(path, params=params, headers=headers)
        assert response.status_code in (400, 404), (path, params, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    assert rows(db, "event_receipts") == []
