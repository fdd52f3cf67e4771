"""Groups over time (§4.3) over HTTP: what ``by`` each route takes, the invariant that the
groups and the others sum to the section's series bucket by bucket, and the CSV form. Their
figures are checked against the oracle in test_against_oracle."""

import csv
import io

import pytest

from testkit.factories import BASE_TIME, identity, iso, llm_call, post_events, workload_allocated
from testkit.invariants import same

_KEY_COLUMNS = {"identity": 3, "model": 1, "agent": 2}
WINDOW = {"start": iso(BASE_TIME), "end": iso(BASE_TIME.replace(hour=6)), "bucket": "1h"}


@pytest.mark.parametrize(
    ("path", "by"),
    [
        ("/orgs/acme/usage/llm/groups", "agent"),
        ("/orgs/acme/usage/llm/groups", "org"),
        ("/orgs/acme/usage/compute/groups", "model"),
        ("/orgs/acme/usage/platform/groups", "model"),
        ("/usage/storage/groups", "identity"),
        ("/orgs/acme/usage/llm/groups", ""),
    ],
)
def test_a_dimension_the_section_has_not_is_400_naming_by(usage, admin_key, path, by):
    response = usage(path, admin_key, **WINDOW, by=by)
    assert response.status_code == 400, response.text
    assert [error["field"] for error in response.json()["errors"]] == ["by"]


def test_by_is_required_and_only_groups_take_it_and_they_take_no_compare(usage, admin_key):
    missing = usage("/orgs/acme/usage/llm/groups", admin_key, **WINDOW)
    assert missing.status_code == 400
    assert missing.headers["content-type"] == "application/problem+json"
    not_here = usage("/orgs/acme/usage/llm", admin_key, **WINDOW, by="model")
    assert not_here.status_code == 400 and "'by'" in not_here.json()["detail"]
    no_previous = usage(
        "/orgs/acme/usage/llm/groups", admin_key, **WINDOW, by="model", compare="previous"
    )
    assert no_previous.status_code == 400 and "'compare'" in no_previous.json()["detail"]


@pytest.fixture
def busy(client, db, ingest_key):
    """Four models and three identities in acme over six hours; workloads of three agents."""
    events = [
        llm_call(
            time=BASE_TIME.replace(hour=hour, minute=7 * n),
            model=f"m{n % 4}",
            who=identity(f"a{n % 3}", name=f"Agent {n % 3}"),
            input_tokens=100 * (n + 1),
            output_tokens=n,
        )
        for hour in range(6)
        for n in range(6)
    ] + [
        workload_allocated(f"w{n}", agent=f"a{n}", cpu_cores=n + 1, time=BASE_TIME)
        for n in range(3)
    ]
    assert post_events(client, ingest_key, events).status_code == 200


@pytest.mark.parametrize(
    ("section", "by", "figures"),
    [
        ("llm", "model", ["fresh_input_tokens", "output_tokens", "successful_requests"]),
        ("llm", "identity", ["cached_input_tokens", "output_tokens"]),
        ("compute", "agent", ["cpu_core_hours", "ram_gb_hours"]),
    ],
)
@pytest.mark.parametrize("top", [1, 2, 10])
def test_groups_and_others_sum_to_the_series_bucket_by_bucket(
    client, busy, read_key, section, by, figures, top
):
    headers = {"Authorization": f"Bearer {read_key}"}
    params = {**WINDOW, "top": top}
    series = client.get(f"/orgs/acme/usage/{section}", params=params, headers=headers).json()
    response = client.get(
        f"/orgs/acme/usage/{section}/groups", params={**params, "by": by}, headers=headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["by"] == by and body["window"] == series["window"]
    assert len(body["groups"]) == min(top, 3 if by != "model" else 4)
    everything = [*body["groups"], *([body["other"]] if body["other"] else [])]
    for n, bucket in enumerate(series["series"]):
        for figure in figures:
            assert same(sum(group["series"][n][figure] for group in everything), bucket[figure])
    ranking = [group["summary"] for group in body["groups"]]
    assert ranking == sorted(ranking, key=lambda s: -_score(section, s))
    if body["other"]:
        assert body["other"]["count"] == (3 if by != "model" else 4) - top


def _score(section: str, summary: dict) -> float:
    if section == "llm":
        return summary["input_tokens"] + summary["output_tokens"]
    return summary["cpu_core_hours"]


def test_groups_csv_is_one_row_per_group_per_bucket_with_the_others_last(client, busy, read_key):
    headers = {"Authorization": f"Bearer {read_key}"}
    params = {**WINDOW, "by": "identity", "top": 2}
    body = client.get("/orgs/acme/usage/llm/groups", params=params, headers=headers).json()
    response = client.get(
        "/orgs/acme/usage/llm/groups", params={**params, "format": "csv"}, headers=headers
    )
    assert response.status_code == 200
    assert "llm-by-identity" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert list(rows[0])[:6] == [
        "start",
        "end",
        "partial",
        "identity_kind",
        "identity_id",
        "identity_name",
    ]
    assert list(rows[0])[-1] == "count"
    assert len(rows) == 3 * 6
    first = body["groups"][0]
    assert rows[0]["identity_id"] == first["key"]["identity"]["id"]
    assert rows[0]["identity_name"] == first["key"]["identity"]["name"]
    assert int(rows[0]["output_tokens"]) == first["series"][0]["output_tokens"]
    others = rows[12:]
    assert all(row["identity_id"] == "" and row["count"] == "1" for row in others)
    assert [int(row["output_tokens"]) for row in others] == [
        bucket["output_tokens"] for bucket in body["other"]["series"]
    ]


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_a_name_a_spreadsheet_would_run_is_text_in_every_csv(
    client, db, ingest_key, read_key, start
):
    """CSV injection: a client-supplied name starting like a formula gets a leading ' (OWASP)
    in the groups' CSV, whatever its column; the figures stay numbers."""
    name = f'{start}HYPERLINK("http://x","a")'
    calls = [
        llm_call(who=identity(name, name=name), model=name, time=BASE_TIME.replace(hour=1)),
        workload_allocated(agent=name, time=BASE_TIME.replace(hour=1)),
    ]
    assert post_events(client, ingest_key, calls).status_code == 200
    headers = {"Authorization": f"Bearer {read_key}"}
    for path, by in [
        ("llm", "identity"),
        ("llm", "model"),
        ("compute", "agent"),
    ]:
        response = client.get(
            f"/orgs/acme/usage/{path}/groups",
            params={**WINDOW, "by": by, "format": "csv"},
            headers=headers,
        )
        assert response.status_code == 200, response.text
        rows = list(csv.reader(io.StringIO(response.text, newline="")))
        named = [cell for row in rows[1:] for cell in row if name in cell]
        assert named and all(cell == "'" + name for cell in named)
        figures = rows[0].index("partial") + 1 + _KEY_COLUMNS[by]
        assert all(float(cell) >= 0 for row in rows[1:] for cell in row[figures:-1])
