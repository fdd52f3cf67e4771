"""Checks of the service through faults (the database or a worker stopped mid-ingest, while
the server's folder folds)."""

import threading
import time
from collections.abc import Callable

import httpx

from testkit.database import rows_as_they_are
from testkit.factories import post_events
from testkit.server import Server


def client(server: Server) -> httpx.Client:
    # Longer than the pool's 5 s wait for a connection while PostgreSQL is away.
    return httpx.Client(base_url=server.url, timeout=30)


def stored_ids(url: str) -> list[str]:
    return sorted(row[2] for row in rows_as_they_are(url, "event_receipts"))


def consistent(url: str) -> None:
    """Nothing half-written: every receipt has its call, and once the server's folder has
    emptied the queue (it carries on after the outage by itself), the rollups count every
    call."""
    wait_for(lambda: not rows_as_they_are(url, "llm_calls_pending"), 30, "the folder")
    receipts = stored_ids(url)
    calls = sorted(row[2] for row in rows_as_they_are(url, "llm_calls"))
    assert calls == receipts
    per_day = rows_as_they_are(url, "llm_totals_1d")
    assert sum(row[5] + row[6] for row in per_day) == len(calls)


def wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"waited {seconds} s for {what}"
        time.sleep(0.05)


def ingest_through_an_outage(
    server: Server,
    key: str,
    database_url: str,
    *,
    stop: Callable[[], None],
    start: Callable[[], None],
    batch: Callable[[int], list[dict]],
    while_down: Callable[[], None] = lambda: None,
) -> None:
    """Batches (``batch(n)``, the n-th) sent one after another while ``stop`` takes the
    database (or part of it) away mid-ingest and ``start`` brings it back: the refusals are
    503 problems with Retry-After, the service recovers without a restart, every
    acknowledged event is stored, nothing half-written, and the refused batches sent again
    are stored once. ``while_down`` checks more during the outage."""
    acknowledged: list[list[dict]] = []
    refused: list[list[dict]] = []
    refusals: list[httpx.Response] = []
    stopping = threading.Event()

    def ingester() -> None:
        with client(server) as http:
            n = 0
            while not stopping.is_set():
                sent = batch(n)
                n += 1
                response = post_events(http, key, sent)
                if response.status_code == 200:
                    acknowledged.append(sent)
                else:
                    refused.append(sent)
                    refusals.append(response)
                    time.sleep(0.1)  # as a client backing off would; fewer batches to resend

    thread = threading.Thread(target=ingester)
    thread.start()
    try:
        wait_for(lambda: len(acknowledged) >= 3, 30, "batches before the stop")
        stop()
        wait_for(lambda: len(refusals) >= 2, 30, "refusals during the outage")
        while_down()
        before_restart = len(acknowledged)
        start()
        wait_for(
            lambda: httpx.get(f"{server.url}/readyz", timeout=10).status_code == 200,
            30,
            "readiness after the restart",
        )
        wait_for(lambda: len(acknowledged) >= before_restart + 3, 60, "batches after")
    finally:
        stopping.set()
        thread.join(timeout=60)
    assert server.process.poll() is None  # recovered without a restart of the service
    for response in refusals:
        assert response.status_code == 503, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert int(response.headers["retry-after"]) > 0
    stored = set(stored_ids(database_url))
    assert {event["id"] for sent in acknowledged for event in sent} <= stored
    consistent(database_url)
    # Sent again, the refused batches are stored once: whatever was stored is a duplicate.
    with client(server) as http:
        for sent in refused:
            result = post_events(http, key, sent).json()
            assert result["accepted"] + result["duplicates"] == len(sent)
    every_id = {event["id"] for sent in acknowledged + refused for event in sent}
    assert stored_ids(database_url) == sorted(every_id)
    consistent(database_url)
