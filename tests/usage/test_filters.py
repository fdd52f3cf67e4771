"""Filters over HTTP (§4.1): what each route takes, what it refuses, and that CSV honours
them. Their figures are checked against the oracle in test_against_oracle."""

import csv
import io

import pytest

from testkit.factories import BASE_TIME, iso

WINDOW = {"start": iso(BASE_TIME), "end": iso(BASE_TIME.replace(hour=6)), "bucket": "1h"}
_ONE_ORG = "/orgs/acme/usage/{}"
_ALL_ORGS = "/usage/{}"


@pytest.mark.parametrize(
    ("path", "params", "field", "says"),
    [
        (_ONE_ORG.format("compute"), {"model": "gpt-5"}, "model", "takes agent"),
        (_ONE_ORG.format("platform"), {"agent": "a1"}, "agent", "takes identity"),
        (_ONE_ORG.format("storage"), {"identity": "agent:a1"}, "identity", "takes agent"),
        (_ONE_ORG.format("llm"), {"org": "acme"}, "org", "takes model, identity"),
        (_ALL_ORGS.format("llm"), {"agent": "a1"}, "agent", "takes model, identity, org"),
        (_ONE_ORG.format("llm"), {"model": [f"m{n}" for n in range(21)]}, "model", "at most 20"),
        (_ONE_ORG.format("llm"), {"identity": "a1"}, "identity", "kind:id"),
        (_ONE_ORG.format("llm"), {"identity": "robot:a1"}, "identity", "kind:id"),
        (_ONE_ORG.format("llm"), {"identity": "agent:"}, "identity", "kind:id"),
        (_ONE_ORG.format("llm"), {"model": ""}, "model", "empty"),
        (_ONE_ORG.format("llm"), {"model": "x" * 201}, "model", "200 characters"),
        (_ONE_ORG.format("llm"), {"model": "gpt\n5"}, "model", "control characters"),
        (_ALL_ORGS.format("platform"), {"org": "Acme Corp"}, "org", "slug"),
    ],
)
def test_filters_a_read_does_not_take_or_malformed_values_are_400(
    usage, read_key, admin_key, path, params, field, says
):
    key = admin_key if path.startswith("/usage") else read_key
    response = usage(path, key, **WINDOW, **params)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert says in problem["detail"]
    assert [error["field"] for error in problem["errors"]] == [field]


def test_a_filter_echoes_and_narrows_and_one_matching_nothing_gives_zeros(usage, read_key):
    path = _ONE_ORG.format("llm")
    everything = usage(path, read_key, **WINDOW).json()
    assert everything["filters"] == {}
    kept = usage(path, read_key, **WINDOW, model=["gpt-5", "gpt-5", "o4"]).json()
    assert kept["filters"] == {"model": ["gpt-5", "o4"]}
    assert kept["summary"] == everything["summary"] and kept["summary"]["input_tokens"] > 0
    nothing = usage(path, read_key, **WINDOW, model="o4", identity="agent:a1")
    assert nothing.status_code == 200
    body = nothing.json()
    assert body["filters"] == {"model": ["o4"], "identity": ["agent:a1"]}
    assert set(body["summary"].values()) == {0} and body["top_consumers"] == []


@pytest.mark.parametrize(
    ("section", "params", "figure"),
    [
        ("llm", {"identity": "user:a1"}, "output_tokens"),
        ("compute", {"agent": "a2"}, "cpu_core_hours"),
        ("storage", {"agent": "a2"}, "storage_gb_hours"),
        ("platform", {"identity": "user:a1"}, "messages_sent"),
    ],
)
def test_csv_honours_the_filters(usage, read_key, section, params, figure):
    """The one event of each type is agent a1's: filtered to someone else, the CSV is zeros
    where the unfiltered one is not."""
    path = _ONE_ORG.format(section)
    unfiltered = usage(path, read_key, **WINDOW, format="csv").text
    filtered = usage(path, read_key, **WINDOW, **params, format="csv").text

    def column(text: str) -> list[float]:
        return [float(row[figure]) for row in csv.DictReader(io.StringIO(text))]

    assert sum(column(unfiltered)) > 0
    assert column(filtered) == [0.0] * len(column(unfiltered))


def test_the_org_filter_narrows_the_cross_org_read(usage, admin_key):
    path = _ALL_ORGS.format("llm")
    both = usage(path, admin_key, **WINDOW).json()
    globex = usage(path, admin_key, **WINDOW, org="globex").json()
    assert [row["org"] for row in both["by_org"]] == ["acme", "globex"]
    assert [row["org"] for row in globex["by_org"]] == ["globex"]
    assert globex["summary"] == {
        name: value for name, value in both["by_org"][1].items() if name != "org"
    }
