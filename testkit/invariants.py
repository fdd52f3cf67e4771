"""The contract's invariants, for any usage response: summary = Σ series = Σ breakdown + other."""

import itertools
from typing import Any

import pytest

_SERIES_OF_SUMMARY = {
    "llm": {
        "input_tokens": lambda b: b["cached_input_tokens"] + b["fresh_input_tokens"],
        "cached_tokens": lambda b: b["cached_input_tokens"],
        "output_tokens": lambda b: b["output_tokens"],
        "successful_requests": lambda b: b["successful_requests"],
        "failed_requests": lambda b: b["failed_requests"],
    },
    "compute": {
        "cpu_core_hours": lambda b: b["cpu_core_hours"],
        "ram_gb_hours": lambda b: b["ram_gb_hours"],
    },
    "storage": {"storage_gb_hours": lambda b: b["storage_gb_hours"]},
    "platform": {
        "threads_created": lambda b: b["threads_created"],
        "messages_sent": lambda b: b["messages_sent"],
    },
}
_BREAKDOWNS = {
    "llm": [("top_consumers", "other_consumers"), ("by_model", "other_models")],
    "compute": [("top_agents", "other_agents")],
    "storage": [("top_agents", "other_agents")],
    "platform": [],
}
_ITEM_OF_SUMMARY = {"llm": {"input_tokens", "cached_tokens", "output_tokens"}}


def same(actual: float, expected: float) -> bool:
    return actual == pytest.approx(expected, rel=1e-9, abs=1e-12)


def check_invariants(section: str, body: dict[str, Any]) -> None:
    summary = body["summary"]
    for name, of_bucket in _SERIES_OF_SUMMARY[section].items():
        assert same(summary[name], sum(of_bucket(b) for b in body["series"])), name
    figures = _ITEM_OF_SUMMARY.get(section, set(_SERIES_OF_SUMMARY[section]))
    for items, other in _BREAKDOWNS[section]:
        for name in figures:
            rest = body[other][name] if body[other] else 0
            assert same(sum(item[name] for item in body[items]) + rest, summary[name]), name
        if section == "llm":
            requests = summary["successful_requests"] + summary["failed_requests"]
            rest = body[other]["requests"] if body[other] else 0
            assert sum(item["requests"] for item in body[items]) + rest == requests
    if "by_org" in body:
        for name in _SERIES_OF_SUMMARY[section]:
            rest = body["other_orgs"][name] if body["other_orgs"] else 0
            assert same(sum(item[name] for item in body["by_org"]) + rest, summary[name]), name
    series = body["series"]
    for bucket, following in itertools.pairwise(series):
        assert bucket["start"] < bucket["end"] == following["start"], "buckets tile the window"
