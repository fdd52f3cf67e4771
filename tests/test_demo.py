"""Demo data: deterministic, realistic, and loaded through the ingest path."""

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from api.dev.demo import DAYS, DEMO_ORG, MODELS, ORGS, demo_events, load_demo
from api.reads.sections import SECTION_NAMES
from testkit.database import rows
from testkit.invariants import check_invariants

NOW = datetime(2026, 10, 28, 15, 42, tzinfo=UTC)


@pytest.fixture(scope="module")
def events():
    return demo_events(seed=1, now=NOW)


def test_same_seed_same_events_other_seed_other_events(events):
    assert demo_events(seed=1, now=NOW) == events
    assert demo_events(seed=2, now=NOW) != events


def test_covers_three_orgs_over_the_last_35_days(events):
    assert {e.subject for e in events} == {org.slug for org in ORGS}
    assert min(e.time for e in events) >= NOW - timedelta(days=DAYS, hours=1)
    assert max(e.time for e in events) <= NOW
    assert Counter(e.type for e in events).keys() == {
        "llm.call",
        "workload.allocated",
        "workload.released",
        "volume.provisioned",
        "volume.deleted",
        "thread.created",
        "message.sent",
    }


def test_llm_calls_look_real(events):
    calls = [e for e in events if e.type == "llm.call"]
    assert len({e.data["model"] for e in calls}) >= 6
    failed = sum(not e.data["succeeded"] for e in calls) / len(calls)
    assert 0.01 < failed < 0.03
    identities = {(e.data["identity"]["kind"], e.data["identity"]["id"]) for e in calls}
    assert sum(kind == "agent" for kind, _ in identities) >= 24
    assert sum(kind == "user" for kind, _ in identities) >= 12
    cache_ratio = {}
    for model, _, _ in MODELS:
        of_model = [e.data for e in calls if e.data["model"] == model]
        cache_ratio[model] = sum(d["cached_tokens"] for d in of_model) / sum(
            d["input_tokens"] for d in of_model
        )
    assert max(cache_ratio.values()) - min(cache_ratio.values()) > 0.3
    per_weekday = Counter(e.time.weekday() < 5 for e in calls)
    assert per_weekday[True] / 5 > 2 * per_weekday[False] / 2  # quieter weekends
    per_hour = Counter(e.time.hour for e in calls)
    assert per_hour[14] > 3 * per_hour[2]  # a daily rhythm


def test_workloads_and_volumes_resize_end_and_keep_running(events):
    allocations = Counter(e.data["workload_id"] for e in events if e.type == "workload.allocated")
    released = {e.data["workload_id"] for e in events if e.type == "workload.released"}
    assert any(count > 1 for count in allocations.values())
    assert allocations.keys() - released  # some still running
    lifetimes = [
        (
            max(e.time for e in events if e.data.get("workload_id") == workload_id)
            - min(e.time for e in events if e.data.get("workload_id") == workload_id)
        )
        for workload_id in list(released)[:200]
    ]
    assert min(lifetimes) < timedelta(minutes=30) and max(lifetimes) > timedelta(days=1)
    provisions = Counter(e.data["volume_id"] for e in events if e.type == "volume.provisioned")
    assert any(count > 1 for count in provisions.values())
    assert any(e.type == "volume.deleted" for e in events)


def test_loads_every_event_through_ingest_and_every_section_answers(db, events, client, read_key):
    asyncio.run(load_demo(db, seed=1, now=NOW))
    assert len(rows(db, "event_receipts")) == len(events)
    calls = [e for e in events if e.type == "llm.call"]
    assert len(rows(db, "llm_calls")) == len(calls)
    assert sum(r[2] for r in rows(db, "llm_totals_1d")) == sum(
        e.data["input_tokens"] for e in calls
    )
    assert {r[0] for r in rows(db, "orgs")} == {org.slug for org in ORGS}
    for section in SECTION_NAMES:
        for preset in ["24h", "7d", "30d"]:
            response = client.get(
                f"/orgs/{DEMO_ORG}/usage/{section}",
                params={"range": preset, "end": NOW.isoformat()},
                headers={"Authorization": f"Bearer {read_key}"},
            )
            assert response.status_code == 200, response.text
            body = response.json()
            check_invariants(section, body)
            assert all(figure > 0 for figure in body["summary"].values()), (section, preset)
