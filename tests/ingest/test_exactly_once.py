"""Exactly once, in any order: the stored state depends only on the set of events.

Hypothesis draws event sets full of ties and out-of-order times; every shuffle, split into
batches and re-sending must leave the same tables, and the segments must match an oracle
written from the contract.
"""

import asyncio
import random
from datetime import timedelta

import msgspec
import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.core.parsing import Accepting, BodyKind, parse_events
from api.storage.availability import Database
from api.storage.db import connect_kwargs
from api.storage.ingest import ingest, ingest_batches
from api.storage.writer import Writer
from testkit.database import reset, rows, snapshot, with_connection
from testkit.engine import examples
from testkit.factories import (
    BASE_TIME,
    iso,
    llm_call,
    message_sent,
    post_events,
    volume_deleted,
    volume_provisioned,
    workload_allocated,
    workload_released,
)
from testkit.oracle import segment_rows
from testkit.strategies import deliveries, event_sets


@settings(
    max_examples=examples(60),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
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

    assert rows(database_url, "workload_segments") == segment_rows(events, "workload")
    assert rows(database_url, "volume_segments") == segment_rows(events, "volume")


@settings(
    max_examples=examples(30),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data(), events=event_sets)
def test_batches_written_together_count_as_if_sent_one_after_another(database_url, data, events):
    """The server writes the batches that wait for a transaction in one (api.storage.writer):
    each gets the counts, and the tables the state, that sending them in turn gives."""
    batches = [_parse(batch) for batch in data.draw(deliveries(events))]
    reset(database_url)
    in_turn = [with_connection(database_url, lambda conn, b=b: ingest(conn, b)) for b in batches]
    sent_in_turn = snapshot(database_url)
    reset(database_url)
    together = with_connection(database_url, lambda conn: ingest_batches(conn, batches))
    assert together == in_turn
    assert snapshot(database_url) == sent_in_turn


def test_a_servers_concurrent_requests_share_transactions_and_keep_their_counts(database_url):
    """Six requests at once through one server's writer, written in one transaction: each
    is answered with the counts it would get alone, in the order they came."""
    reset(database_url)
    first = [llm_call(id="a"), llm_call(id="b")]
    batches = [first, [llm_call(id="b"), llm_call(id="c")], first, [], [llm_call(id="d")] * 3]
    batches.append([workload_allocated("w1", time=BASE_TIME), llm_call(id="c")])

    async def send_at_once() -> list[tuple[int, int]]:
        database = Database(database_url, pool_size=2)
        await database.open()
        try:
            writer = Writer(database)
            results = await asyncio.gather(*(writer.ingest(_parse(b)) for b in batches))
        finally:
            await database.close()
        return [(result.accepted, result.duplicates) for result in results]

    assert asyncio.run(send_at_once()) == [(2, 0), (1, 1), (0, 2), (0, 0), (1, 2), (1, 1)]
    assert len(rows(database_url, "event_receipts")) == 5


def _parse(events):
    return parse_events(
        msgspec.json.encode(events), BodyKind.BATCH, Accepting(BASE_TIME + timedelta(days=365))
    )


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
        assert rows(database_url, "workload_segments") == segment_rows(events, "workload")
        assert rows(database_url, "volume_segments") == segment_rows(events, "volume")
        assert sum(r[5] for r in rows(database_url, "llm_totals_5m")) == 20


def test_the_same_batch_sent_twice_at_once_is_stored_once(database_url):
    for _ in range(10):
        reset(database_url)
        batch = [workload_allocated("w1", time=BASE_TIME), llm_call(), message_sent()]
        assert asyncio.run(_ingest_concurrently(database_url, [batch, batch, batch])) == 3
        assert len(rows(database_url, "event_receipts")) == 3
        assert sum(r[5] for r in rows(database_url, "llm_totals_1d")) == 1
        assert rows(database_url, "platform_totals_1h")[0][3] == 1


def test_an_event_sent_again_with_another_time_or_data_is_a_duplicate(client, db, ingest_key):
    """DESIGN §5: the dedupe key is (subject, source, id); the first stored wins."""
    first = llm_call(id="call-1", time=BASE_TIME, input_tokens=100)
    later = {**first, "time": iso(BASE_TIME + timedelta(hours=5))}
    remeasured = {**later, "data": {**first["data"], "input_tokens": 900}}
    answers = [post_events(client, ingest_key, [sent]).json() for sent in (first, first, later)]
    answers.append(post_events(client, ingest_key, [remeasured, llm_call(id="call-2")]).json())
    assert answers == [
        {"accepted": 1, "duplicates": 0},
        {"accepted": 0, "duplicates": 1},
        {"accepted": 0, "duplicates": 1},
        {"accepted": 1, "duplicates": 1},
    ]
    calls = {row[2]: row for row in rows(db, "llm_calls")}
    assert calls["call-1"][3] == BASE_TIME and calls["call-1"][7] == 100
    # Within one batch too: the first copy is stored, whichever comes first.
    batch = [{**first, "id": "call-3"}, {**later, "id": "call-3"}, {**later, "id": "call-4"}]
    assert post_events(client, ingest_key, batch).json() == {"accepted": 2, "duplicates": 1}
    assert {row[2]: row[3] for row in rows(db, "event_receipts")} == {
        "call-1": BASE_TIME,
        "call-2": BASE_TIME,
        "call-3": BASE_TIME,
        "call-4": BASE_TIME + timedelta(hours=5),
    }


def test_copies_of_one_event_at_different_times_sent_at_once_are_stored_once(database_url):
    """The receipts' key holds across months: copies in different months of event time, in
    concurrent transactions, leave one receipt and one call."""
    for _ in range(5):
        reset(database_url)
        copies = [
            [llm_call(id="only", time=BASE_TIME + timedelta(days=days))] for days in (0, 31, 62)
        ]
        assert asyncio.run(_ingest_concurrently(database_url, copies)) == 1
        assert len(rows(database_url, "event_receipts")) == 1
        assert len(rows(database_url, "llm_calls")) == 1
