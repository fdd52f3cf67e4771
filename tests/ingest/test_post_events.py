"""POST /events over HTTP: what is stored, what is counted, what is refused."""

import gzip
import zlib
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from api.core.events import Agent, WorkloadAllocated, WorkloadAllocatedEvent
from api.core.tiers import TIERS
from api.storage.ingest import ingest
from testkit.database import rows, snapshot, with_connection
from testkit.factories import (
    BASE_TIME,
    BATCH,
    identity,
    iso,
    llm_call,
    message_sent,
    one_of_each,
    post_events,
    thread_created,
    volume_deleted,
    volume_provisioned,
    workload_allocated,
    workload_released,
)

GIB = 2**30


def test_each_event_type_is_stored_with_its_figures(client, db, ingest_key):
    events = one_of_each()
    response = post_events(client, ingest_key, events)
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 7, "duplicates": 0}
    assert [receipt[:3] for receipt in rows(db, "event_receipts")] == sorted(
        ("acme", "test", e["id"]) for e in events
    )
    (call,) = rows(db, "llm_calls")
    assert call[4:] == ("agent", "a1", "gpt-5", 100, 40, 20, True)
    assert [r[4:] for r in rows(db, "workload_events")] == [
        ("w1", "allocated", "a1", 2.0, GIB),
        ("w1", "released", None, None, None),
    ]
    assert [r[4:] for r in rows(db, "volume_events")] == [
        ("v1", "provisioned", "a1", GIB),
        ("v1", "deleted", None, None),
    ]
    assert [r[4:] for r in rows(db, "thread_events")] == [("t1", "agent", "a1")]
    assert [r[4:] for r in rows(db, "message_events")] == [("t1", "agent", "a1")]
    assert rows(db, "orgs") == [("acme",)]
    hour = timedelta(hours=1)
    assert rows(db, "workload_segments") == [
        ("acme", "w1", BASE_TIME, BASE_TIME + hour, "a1", 2.0, GIB)
    ]
    assert rows(db, "volume_segments") == [("acme", "v1", BASE_TIME, BASE_TIME + hour, "a1", GIB)]
    for tier in TIERS:
        assert rows(db, f"llm_totals_{tier}") == [("acme", BASE_TIME, 100, 40, 20, 1, 0)]
        assert rows(db, f"llm_by_identity_{tier}") == [
            ("acme", BASE_TIME, "agent", "a1", 100, 40, 20, 1, 0)
        ]
        assert rows(db, f"llm_by_model_{tier}") == [("acme", BASE_TIME, "gpt-5", 100, 40, 20, 1, 0)]
        assert rows(db, f"platform_totals_{tier}") == [("acme", BASE_TIME, 1, 1)]


def test_rollups_add_up_within_a_bucket_and_split_across_buckets(client, db, ingest_key):
    minute = timedelta(minutes=1)
    events = [
        llm_call(time=BASE_TIME, input_tokens=10, cached_tokens=1, output_tokens=2),
        llm_call(time=BASE_TIME + 4 * minute, input_tokens=5, cached_tokens=5, succeeded=False),
        llm_call(time=BASE_TIME + 5 * minute, input_tokens=7, cached_tokens=0, output_tokens=3),
        message_sent(time=BASE_TIME + 299 * minute / 60),
        message_sent(time=BASE_TIME + 5 * minute),
    ]
    assert post_events(client, ingest_key, events).status_code == 200
    assert [r[1:] for r in rows(db, "llm_totals_5m")] == [
        (BASE_TIME, 15, 6, 22, 1, 1),
        (BASE_TIME + 5 * minute, 7, 0, 3, 1, 0),
    ]
    assert rows(db, "platform_totals_5m") == [
        ("acme", BASE_TIME, 0, 1),
        ("acme", BASE_TIME + 5 * minute, 0, 1),
    ]
    for tier in ("1h", "1d"):
        assert [r[1:] for r in rows(db, f"llm_totals_{tier}")] == [(BASE_TIME, 22, 6, 25, 2, 1)]
        assert rows(db, f"platform_totals_{tier}") == [("acme", BASE_TIME, 0, 2)]


def test_duplicates_within_and_across_batches_are_counted_not_stored(client, db, ingest_key):
    first = llm_call(id="e1", input_tokens=10, cached_tokens=0)
    changed_copy = llm_call(id="e1", input_tokens=999, cached_tokens=0)
    other_source = llm_call(id="e1", source="other", input_tokens=1, cached_tokens=0)
    response = post_events(client, ingest_key, [first, changed_copy, other_source])
    assert response.json() == {"accepted": 2, "duplicates": 1}
    state = snapshot(db)
    response = post_events(client, ingest_key, [changed_copy, other_source, first])
    assert response.json() == {"accepted": 0, "duplicates": 3}
    assert snapshot(db) == state
    # The first write wins: the copy with other figures changed nothing.
    assert sorted(r[7] for r in rows(db, "llm_calls")) == [1, 10]


def test_same_id_in_another_org_is_another_event(client, db, ingest_key):
    events = [llm_call(id="e1", org="acme"), llm_call(id="e1", org="globex")]
    assert post_events(client, ingest_key, events).json() == {"accepted": 2, "duplicates": 0}
    assert rows(db, "orgs") == [("acme",), ("globex",)]


def test_names_come_from_the_latest_event_by_time(client, db, ingest_key):
    early, late = BASE_TIME, BASE_TIME + timedelta(hours=1)
    first = post_events(client, ingest_key, [llm_call(who=identity(name="New"), time=late)])
    assert first.status_code == 200
    later_batch = [
        llm_call(who=identity(name="Old"), time=early),
        thread_created(who=identity(), time=late + timedelta(hours=1)),  # no name: no change
        workload_allocated(agent="a1", time=early),
        llm_call(who=identity("a1", "user", "A user"), time=early),
    ]
    assert post_events(client, ingest_key, later_batch).status_code == 200
    assert [r[:4] for r in rows(db, "identities")] == [
        ("acme", "agent", "a1", "New"),
        ("acme", "user", "a1", "A user"),
    ]


def test_single_structured_event_and_plain_json(client, db, ingest_key):
    single = llm_call()
    response = post_events(client, ingest_key, single, "application/cloudevents+json")
    assert response.json() == {"accepted": 1, "duplicates": 0}
    response = post_events(client, ingest_key, [single, llm_call()], "application/json")
    assert response.json() == {"accepted": 1, "duplicates": 1}
    response = post_events(client, ingest_key, [], "application/json; charset=utf-8")
    assert response.json() == {"accepted": 0, "duplicates": 0}


def _invalid(event: dict, **changes) -> dict:
    return {**event, **changes}


def _without(event: dict, name: str) -> dict:
    return {key: value for key, value in event.items() if key != name}


def _with_data(event: dict, **changes) -> dict:
    return {**event, "data": {**event["data"], **changes}}


# Far enough ahead to stay beyond the 5 minutes allowed however long the suite runs before it.
_FUTURE = iso(datetime.now(UTC) + timedelta(hours=6))
BAD_EVENTS = {
    "missing id": (_without(llm_call(), "id"), "id"),
    "missing subject": (_without(llm_call(), "subject"), "subject"),
    "missing data field": (_without(llm_call(), "data"), "data"),
    "missing model": ({**llm_call(), "data": _without(llm_call()["data"], "model")}, "data.model"),
    "wrong specversion": (_invalid(llm_call(), specversion="0.3"), "specversion"),
    "tokens as string": (_with_data(llm_call(), input_tokens="100"), "data.input_tokens"),
    "negative tokens": (_with_data(llm_call(), output_tokens=-1), "data.output_tokens"),
    "fractional tokens": (_with_data(llm_call(), output_tokens=1.5), "data.output_tokens"),
    "cached over input": (_with_data(llm_call(), cached_tokens=101), "data.cached_tokens"),
    "time 6 hours ahead": (_invalid(llm_call(), time=_FUTURE), "time"),
    "time without offset": (_invalid(llm_call(), time="2026-11-02T00:00:00"), "time"),
    "unknown type": (_invalid(llm_call(), type="llm.called"), "type"),
    "5,000-character id": (_invalid(llm_call(), id="x" * 5000), "id"),
    "5,000-character model": (_with_data(llm_call(), model="m" * 5000), "data.model"),
    "NUL in source": (_invalid(llm_call(), source="a\u0000b"), "source"),
    "NUL in name": (
        _with_data(llm_call(), identity=identity(name="a\u0000")),
        "data.identity.name",
    ),
    "bad org slug": (_invalid(llm_call(), subject="Acme Corp"), "subject"),
    "unknown identity kind": (
        _with_data(llm_call(), identity={"kind": "bot", "id": "b"}),
        "data.identity.kind",
    ),
    "zero cores": (_with_data(workload_allocated(), cpu_cores=0), "data.cpu_cores"),
    "zero volume size": (_with_data(volume_provisioned(), size_bytes=0), "data.size_bytes"),
    "data not an object": (_invalid(volume_deleted(), data=[1]), "data"),
    "wrong data content type": (
        _invalid(llm_call(), datacontenttype="text/xml"),
        "datacontenttype",
    ),
    "event not an object": (42, None),
}


@pytest.mark.parametrize("bad", BAD_EVENTS.values(), ids=BAD_EVENTS.keys())
def test_one_bad_event_refuses_the_whole_batch(client, db, ingest_key, bad):
    bad_event, field = bad
    before = snapshot(db)
    response = post_events(client, ingest_key, [*one_of_each(), bad_event, llm_call()])
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 422
    assert len(problem["errors"]) == 1
    error = problem["errors"][0]
    assert error["index"] == 7
    assert error["field"] == field
    assert error["message"]
    assert snapshot(db) == before


def test_every_bad_event_is_reported(client, db, ingest_key):
    events = [llm_call(), _with_data(llm_call(), input_tokens=-5), _without(llm_call(), "id")]
    problem = post_events(client, ingest_key, events).json()
    assert [(e["index"], e["field"]) for e in problem["errors"]] == [
        (1, "data.input_tokens"),
        (2, "id"),
    ]


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"this is not json", "application/cloudevents-batch+json", 400),
        (b"[{]", "application/json", 400),
        (b'{"a": 1}', "application/cloudevents-batch+json", 400),
        (b"[]", "application/cloudevents+json", 400),
        (b'"text"', "application/json", 400),
        (b"[]", "text/plain", 415),
        (b"[]", "application/xml", 415),
        (b"", "", 415),
    ],
)
def test_malformed_bodies_and_media_types(client, db, ingest_key, body, content_type, status):
    before = snapshot(db)
    response = post_events(client, ingest_key, body, content_type)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == status
    assert snapshot(db) == before


def test_more_than_10000_events_is_too_large(client, db, ingest_key):
    events = [llm_call(id=f"e{n}") for n in range(10_001)]
    response = post_events(client, ingest_key, events)
    assert response.status_code == 413
    assert "10,000" in response.json()["detail"]
    assert rows(db, "event_receipts") == []
    assert post_events(client, ingest_key, events[:10_000]).json()["accepted"] == 10_000


def test_a_body_over_10_mib_is_too_large(client, db, ingest_key):
    padding = b" " * (10 * 1024 * 1024)
    body = b"[" + msgspec.json.encode(llm_call()) + padding + b"]"
    response = post_events(client, ingest_key, body)
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert rows(db, "event_receipts") == []


def test_workload_segments_follow_resizes_and_releases(client, db, ingest_key):
    hour = timedelta(hours=1)
    events = [
        workload_released(time=BASE_TIME + 3 * hour),  # arrives first
        workload_allocated(cpu_cores=4, time=BASE_TIME + hour),  # a resize
        workload_allocated(cpu_cores=1, time=BASE_TIME),
        workload_allocated(cpu_cores=8, time=BASE_TIME + 5 * hour),  # a restart: still running
    ]
    assert post_events(client, ingest_key, events).status_code == 200
    assert [r[2:6] for r in rows(db, "workload_segments")] == [
        (BASE_TIME, BASE_TIME + hour, "a1", 1.0),
        (BASE_TIME + hour, BASE_TIME + 3 * hour, "a1", 4.0),
        (BASE_TIME + 5 * hour, None, "a1", 8.0),
    ]


def _post(client, key: str, body: bytes, **headers: str):
    return client.post(
        "/events",
        content=body,
        headers={"Authorization": f"Bearer {key}", "Content-Type": BATCH, **headers},
    )


def test_a_gzip_body_is_inflated(client, db, ingest_key):
    body = gzip.compress(msgspec.json.encode(one_of_each()))
    response = _post(client, ingest_key, body, **{"Content-Encoding": "gzip"})
    assert response.json() == {"accepted": 7, "duplicates": 0}


def test_a_gzip_bomb_is_413_at_the_limit(client, db, ingest_key):
    inflater = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    bomb = inflater.compress(b"[" + b" " * (1 << 30)) + inflater.flush()  # 1 GiB from ~1 MiB
    before = snapshot(db)
    response = _post(client, ingest_key, bomb, **{"Content-Encoding": "gzip"})
    assert response.status_code == 413
    assert "inflates to more than" in response.json()["detail"]
    assert snapshot(db) == before


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ({"Content-Encoding": "br"}, b"[]", 415),
        ({"Content-Encoding": "deflate"}, b"[]", 415),
        ({"Content-Encoding": "gzip"}, b"[]", 400),  # says gzip, is not
        ({"Content-Encoding": "gzip"}, gzip.compress(b"[]", mtime=0)[:-4], 400),  # truncated
        ({"Content-Type": "application/json; charset=latin-1"}, b"[]", 415),
        ({"Content-Type": "application/json; charset=utf-16"}, b"[]", 415),
        ({"Content-Type": "application/json; charset=UTF-8"}, b"[]", 200),
        ({"ce-specversion": "1.0", "Content-Type": "text/plain"}, b"x", 415),
    ],
)
def test_encodings_and_charsets_other_than_gzip_and_utf8(
    client, db, ingest_key, headers, body, status
):
    response = _post(client, ingest_key, body, **headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == (
        "application/json" if status == 200 else "application/problem+json"
    )


def test_an_event_at_the_last_nanosecond_of_a_bucket_stays_in_it(client, db, ingest_key, read_key):
    event = llm_call(input_tokens=9, cached_tokens=0)
    event["time"] = "2026-11-02T05:59:59.999999999Z"
    assert post_events(client, ingest_key, [event]).status_code == 200
    series = client.get(
        "/orgs/acme/usage/llm",
        params={"start": "2026-11-02T05:00:00Z", "end": "2026-11-02T07:00:00Z", "bucket": "1h"},
        headers={"Authorization": f"Bearer {read_key}"},
    ).json()["series"]
    assert [bucket["fresh_input_tokens"] for bucket in series] == [9, 0]


def test_no_stored_value_can_fail_a_read(client, db, read_key):
    """Events written before the bounds (here straight through ingest, past validation):
    a reservation of 5e-324 cores made every compute read of the org fail."""
    tiny = WorkloadAllocatedEvent(
        specversion="1.0",
        id="tiny",
        source="old",
        subject="acme",
        time=BASE_TIME,
        data=WorkloadAllocated(
            workload_id="w-tiny", agent=Agent(id="a1"), cpu_cores=5e-324, memory_bytes=1
        ),
    )
    with_connection(db, lambda conn: ingest(conn, [tiny]))
    windows = [
        {"range": "7d", "end": iso(BASE_TIME + timedelta(days=1))},
        {"start": iso(BASE_TIME), "end": iso(BASE_TIME + timedelta(hours=2))},
    ]
    for params in windows:
        response = client.get(
            "/orgs/acme/usage/compute",
            params=params,
            headers={"Authorization": f"Bearer {read_key}"},
        )
        assert response.status_code == 200, response.text
        assert 0 <= response.json()["summary"]["cpu_core_hours"] < 1e-300
