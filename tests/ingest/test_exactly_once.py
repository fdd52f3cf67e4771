"""Exactly once, in any order: the stored state depends only on the set of events.

Hypothesis draws event sets full of ties and out-of-order times; every shuffle, split into
batches and re-sending must leave the same tables, and the segments must match an oracle
written from DESIGN §5.
"""

import asyncio
import itertools
import random
from datetime import datetime, timedelta

import msgspec
import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.db import connect_kwargs
from api.ingest import ingest
from api.parsing import BodyShape, parse_events
from tests.database import reset, rows, snapshot
from tests.factories import (
    BASE_TIME,
    identity,
    llm_call,
    message_sent,
    post_events,
    thread_created,
    volume_deleted,
    volume_provisioned,
    workload_allocated,
    workload_released,
)

# Few distinct values, so ties in time, shared objects and renames are common.
_times = st.builds(
    lambda minutes, micros: BASE_TIME + timedelta(minutes=minutes, microseconds=micros),
    st.integers(0, 120),
    st.sampled_from([0, 0, 0, 1, 999_999]),
)
_who = st.builds(
    identity,
    st.sampled_from(["a1", "a2"]),
    st.sampled_from(["agent", "user"]),
    st.sampled_from([None, "Ann", "Bob"]),
)
_orgs = st.sampled_from(["acme", "acme", "globex"])
_event = st.one_of(
    st.builds(
        lambda t, w, o, n, i: llm_call(
            time=t, who=w, org=o, input_tokens=n, cached_tokens=n // 2, output_tokens=i
        ),
        _times,
        _who,
        _orgs,
        st.integers(0, 10**6),
        st.integers(0, 10**4),
    ),
    st.builds(
        lambda t, w, a, c: workload_allocated(w, agent=a, cpu_cores=c, time=t),
        _times,
        st.sampled_from(["w1", "w2"]),
        st.sampled_from(["a1", "a2"]),
        st.sampled_from([0.5, 1, 2]),
    ),
    st.builds(lambda t, w: workload_released(w, time=t), _times, st.sampled_from(["w1", "w2"])),
    st.builds(
        lambda t, v, s: volume_provisioned(v, size_bytes=s, time=t),
        _times,
        st.sampled_from(["v1", "v2"]),
        st.sampled_from([2**30, 5 * 2**30]),
    ),
    st.builds(lambda t, v: volume_deleted(v, time=t), _times, st.sampled_from(["v1", "v2"])),
    st.builds(lambda t, w: thread_created(time=t, who=w), _times, _who),
    st.builds(lambda t, w: message_sent(time=t, who=w), _times, _who),
)
event_sets = st.lists(_event, min_size=1, max_size=30)


@st.composite
def deliveries(draw, events):
    """The events shuffled, some sent again, cut into batches."""
    resent = draw(st.lists(st.sampled_from(events), max_size=10))
    stream = draw(st.permutations(events + resent))
    cuts = sorted(draw(st.lists(st.integers(0, len(stream)), max_size=5)))
    bounds = [0, *cuts, len(stream)]
    return [stream[a:b] for a, b in itertools.pairwise(bounds) if b > a]


def expected_segments(events, kind: str) -> list[tuple]:
    """DESIGN §5 by hand: sort an object's events, each holds until the next one."""
    allocating, object_field = {
        "workload": ("workload.allocated", "workload_id"),
        "volume": ("volume.provisioned", "volume_id"),
    }[kind]
    by_object: dict[tuple, list[dict]] = {}
    for event in events:
        if event["type"].startswith(kind + "."):
            key = (event["subject"], event["data"][object_field])
            by_object.setdefault(key, []).append(event)
    segments = []
    for (org, object_id), history in by_object.items():
        history.sort(
            key=lambda e: (e["time_parsed"], e["type"] != allocating, e["id"], e["source"])
        )
        for position, event in enumerate(history):
            if event["type"] != allocating:
                continue
            start = event["time_parsed"]
            end = history[position + 1]["time_parsed"] if position + 1 < len(history) else None
            if end is not None and end == start:
                continue
            data = event["data"]
            sizes = (
                (float(data["cpu_cores"]), data["memory_bytes"])
                if kind == "workload"
                else (data["size_bytes"],)
            )
            segments.append((org, object_id, start, end, data["agent"]["id"], *sizes))
    return sorted(segments, key=lambda s: (s[0], s[1], s[2]))


def _with_parsed_times(events):
    return [{**e, "time_parsed": datetime.fromisoformat(e["time"])} for e in events]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data(), events=event_sets)
def test_order_batching_and_resending_never_change_the_state(
    client, database_url, ingest_key, data, events
):
    reset(database_url)
    assert post_events(client, ingest_key, events).status_code == 200
    in_one_batch = snapshot(database_url)

    reset(database_url)
    batches = data.draw(deliveries(events))
    accepted = 0
    for batch in batches:
        response = post_events(client, ingest_key, batch)
        assert response.status_code == 200, response.text
        accepted += response.json()["accepted"]
        assert response.json()["accepted"] + response.json()["duplicates"] == len(batch)
    assert accepted == len(events)
    assert snapshot(database_url) == in_one_batch

    parsed = _with_parsed_times(events)
    assert rows(database_url, "workload_segments") == expected_segments(parsed, "workload")
    assert rows(database_url, "volume_segments") == expected_segments(parsed, "volume")


def _parse(events):
    return parse_events(msgspec.json.encode(events), BodyShape.BATCH, BASE_TIME + timedelta(days=1))


async def _ingest_concurrently(database_url: str, batches: list[list[dict]]) -> int:
    connections = [
        await psycopg.AsyncConnection.connect(database_url, **connect_kwargs()) for _ in batches
    ]
    try:
        results = await asyncio.gather(
            *(ingest(conn, _parse(batch)) for conn, batch in zip(connections, batches, strict=True))
        )
    finally:
        for conn in connections:
            await conn.close()
    return sum(result.accepted for result in results)


def test_concurrent_batches_on_the_same_objects(database_url):
    rng = random.Random(7)
    for _ in range(15):
        reset(database_url)
        events = [
            rng.choice([workload_allocated, workload_released, volume_provisioned, volume_deleted])(
                rng.choice(["x1", "x2", "x3"]),
                time=BASE_TIME + timedelta(minutes=rng.randint(0, 60)),
            )
            for _ in range(40)
        ] + [llm_call(time=BASE_TIME + timedelta(minutes=rng.randint(0, 9))) for _ in range(20)]
        rng.shuffle(events)
        batches = [events[n::4] for n in range(4)]
        assert asyncio.run(_ingest_concurrently(database_url, batches)) == len(events)
        parsed = _with_parsed_times(events)
        assert rows(database_url, "workload_segments") == expected_segments(parsed, "workload")
        assert rows(database_url, "volume_segments") == expected_segments(parsed, "volume")
        assert sum(r[8] for r in rows(database_url, "llm_rollup_5m")) == 20


def test_the_same_batch_sent_twice_at_once_is_stored_once(database_url):
    for _ in range(10):
        reset(database_url)
        batch = [workload_allocated("w1", time=BASE_TIME), llm_call(), message_sent()]
        assert asyncio.run(_ingest_concurrently(database_url, [batch, batch, batch])) == 3
        assert len(rows(database_url, "event_receipts")) == 3
        assert sum(r[8] for r in rows(database_url, "llm_rollup_5m")) == 1
        assert rows(database_url, "platform_rollup_5m")[0][3] == 1
