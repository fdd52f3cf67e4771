"""A long-lived workload: 10,000 resizes of one object, its segments and figures against the
oracle, delivered in time order and out of it (each batch rebuilds only the region of the
object's history its events change)."""

import random
from datetime import timedelta

import pytest

from testkit import oracle
from testkit.database import rows
from testkit.factories import BASE_TIME, iso, post_events, workload_allocated, workload_released
from testkit.matching import assert_equal, comparable
from testkit.oracle import OracleWindow, from_us, segment_rows

RESIZES = 10_000
BATCH = 1_000


def resizes() -> list[dict]:
    """One workload resized every minute for a week, released and allocated again now and
    then, and a few events at the very same instant (ties)."""
    events = []
    for n in range(RESIZES):
        time = BASE_TIME - timedelta(days=7) + timedelta(minutes=n)
        if n % 997 == 500:
            events.append(workload_released("w-long", time=time))
            continue
        events.append(
            workload_allocated(
                "w-long",
                agent=f"agt-{n % 3}",
                cpu_cores=(n % 8 + 1) / 4,
                memory_bytes=(n % 5 + 1) * 2**28,
                time=time - timedelta(minutes=1) * (n % 1_500 == 3),  # a tie with the one before
            )
        )
    return events


def windows(events: list[dict]) -> list[tuple[dict, OracleWindow]]:
    first, last = oracle.event_us(events[0]), max(oracle.event_us(e) for e in events)
    spans = [
        (first - 60_000_000, last + 3_600_000_000, "1d"),  # all of it
        (first + 123_456_789, first + 86_400_000_000, "1h"),  # a ragged day
        (last - 3_600_000_000 - 7, last + 1, "5m"),  # the end, open
    ]
    return [
        (
            {"start": iso(from_us(start)), "end": iso(from_us(end)), "bucket": bucket},
            OracleWindow.custom(from_us(start), from_us(end), bucket),
        )
        for start, end, bucket in spans
    ]


@pytest.mark.parametrize("order", ["in time order", "shuffled"])
def test_ten_thousand_resizes_of_one_workload_match_the_oracle(
    client, db, ingest_key, read_key, order
):
    events = resizes()
    delivered = list(events)
    if order == "shuffled":
        random.Random(7).shuffle(delivered)
    for first in range(0, len(delivered), BATCH):
        answer = post_events(client, ingest_key, delivered[first : first + BATCH])
        assert answer.status_code == 200, answer.text

    assert rows(db, "workload_segments") == segment_rows(events, "workload")
    for params, window in windows(events):
        answer = client.get(
            "/orgs/acme/usage/compute",
            params={**params, "top": 3},
            headers={"Authorization": f"Bearer {read_key}"},
        )
        assert answer.status_code == 200, answer.text
        expected = oracle.SECTIONS["compute"](events, window, 3, "acme")
        actual = comparable({name: answer.json()[name] for name in expected})
        assert_equal(actual, expected, f"compute {params}")
