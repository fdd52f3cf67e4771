"""The usage routes over HTTP: window errors, CSV, and who may read what."""

import csv
import io

import pytest

from tests.factories import BASE_TIME, iso, llm_call, one_of_each, post_events

SECTIONS = ["llm", "compute", "storage", "platform"]
END = iso(BASE_TIME.replace(hour=6))


@pytest.fixture
def usage(client, db, ingest_key):
    """acme and globex with one event of each type; a GET helper with a key."""
    assert post_events(client, ingest_key, one_of_each()).status_code == 200
    assert post_events(client, ingest_key, [llm_call(org="globex")]).status_code == 200

    def get(path: str, key: str, **params):
        return client.get(path, params=params, headers={"Authorization": f"Bearer {key}"})

    return get


@pytest.mark.parametrize(
    ("params", "field", "says"),
    [
        ({"range": "24h", "start": END, "end": END}, "start", "not both"),
        ({"start": END}, "end", "needs end"),
        ({"start": END, "end": END}, "start", "before end"),
        ({"start": "2026-11-02T00:00:00", "end": END}, "start", "RFC 3339"),
        ({"start": "yesterday", "end": END}, "start", "RFC 3339"),
        ({"range": "90d"}, "range", "24h, 7d, 30d"),
        ({"bucket": "2h"}, "bucket", "5m, 15m, 30m, 1h, 6h, 1d, 7d"),
        ({"start": "2024-01-01T00:00:00Z", "end": END}, "end", "800 days"),
        ({"start": "2026-01-01T00:00:00Z", "end": END, "bucket": "5m"}, "bucket", "2,000"),
        ({"top": 0}, "top", "1"),
        ({"top": 101}, "top", "100"),
        ({"top": "ten"}, "top", ""),
        ({"format": "xml"}, "format", "json or csv"),
    ],
)
@pytest.mark.parametrize("section", SECTIONS)
def test_invalid_windows_are_400_saying_what_is_wrong(
    usage, read_key, admin_key, section, params, field, says
):
    for path, key in [(f"/orgs/acme/usage/{section}", read_key), (f"/usage/{section}", admin_key)]:
        response = usage(path, key, **params)
        assert response.status_code == 400, response.text
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["status"] == 400
        assert says in problem["detail"]
        assert [error["field"] for error in problem["errors"]] == [field]


@pytest.mark.parametrize("section", SECTIONS)
def test_csv_is_the_series_with_a_header_row(usage, read_key, section):
    params = {"start": iso(BASE_TIME), "end": END, "bucket": "1h"}
    series = usage(f"/orgs/acme/usage/{section}", read_key, **params).json()["series"]
    assert len(series) == 6
    response = usage(f"/orgs/acme/usage/{section}", read_key, **params, format="csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.text.endswith("\r\n")
    header, *rows = list(csv.reader(io.StringIO(response.text)))
    assert header == list(series[0])
    assert [dict(zip(header, row, strict=True)) for row in rows] == [
        {name: _csv_text(value) for name, value in bucket.items()} for bucket in series
    ]
    assert any(float(figure) > 0 for row in rows for figure in row[2:])


def test_accept_text_csv_asks_for_csv(client, usage, read_key):
    response = client.get(
        "/orgs/acme/usage/platform",
        params={"start": iso(BASE_TIME), "end": END},
        headers={"Authorization": f"Bearer {read_key}", "Accept": "text/csv"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.text.splitlines()[0] == "start,partial,threads_created,messages_sent"


def _csv_text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@pytest.mark.parametrize(
    ("holder", "path", "status"),
    [
        ("read", "/orgs/acme/usage/{}", 200),
        ("read", "/orgs/globex/usage/{}", 404),
        ("read", "/orgs/nowhere/usage/{}", 404),
        ("read", "/usage/{}", 403),
        ("admin", "/orgs/acme/usage/{}", 200),
        ("admin", "/orgs/globex/usage/{}", 200),
        ("admin", "/orgs/nowhere/usage/{}", 404),
        ("admin", "/usage/{}", 200),
        ("ingest", "/orgs/acme/usage/{}", 403),
        ("ingest", "/usage/{}", 403),
        ("unknown", "/orgs/acme/usage/{}", 401),
        ("unknown", "/usage/{}", 401),
        ("revoked", "/orgs/acme/usage/{}", 401),
        ("revoked", "/usage/{}", 401),
    ],
)
@pytest.mark.parametrize("section", SECTIONS)
def test_who_may_read_what(
    usage, read_key, admin_key, ingest_key, revoked_key, holder, path, status, section
):
    keys = {
        "read": read_key,
        "admin": admin_key,
        "ingest": ingest_key,
        "revoked": revoked_key,
        "unknown": "usage_x",
    }
    response = usage(path.format(section), keys[holder], end=END)
    assert response.status_code == status, response.text
    if status != 200:
        assert response.headers["content-type"] == "application/problem+json"
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Bearer")


def test_another_orgs_404_is_the_same_as_a_missing_orgs(usage, read_key):
    """A read key learns nothing of other organizations: same status, same shape."""
    hidden = usage("/orgs/globex/usage/llm", read_key).json()
    missing = usage("/orgs/nowhere/usage/llm", read_key).json()
    assert hidden == {**missing, "detail": missing["detail"].replace("nowhere", "globex")}
