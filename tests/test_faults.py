"""Faults: PostgreSQL going away mid-ingest, the same batch from two connections at once,
clients hanging up mid-request, and shutting down with a request in flight. Each against
the real server over its own durable PostgreSQL cluster, which these tests stop and start."""

import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from api.dev.embedded_postgres import EmbeddedPostgres
from api.storage import migrations
from api.storage.availability import GRACE
from api.storage.db import connect
from api.storage.keys import Scope, create_key
from testkit.database import reset, rows, with_connection
from testkit.factories import BATCH, llm_call, post_events
from testkit.server import UNLIMITED, Server, running_server


@pytest.fixture(scope="module")
def cluster() -> Iterator[EmbeddedPostgres]:
    folder = Path(tempfile.mkdtemp(prefix="usage-faults-pg-"))
    postgres = EmbeddedPostgres(folder, durable=True)
    postgres.start()
    migrations.upgrade(postgres.url)
    yield postgres
    postgres.stop()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def key(cluster) -> str:
    return with_connection(cluster.url, lambda conn: create_key(conn, Scope.INGEST, None)).key


@pytest.fixture
def server(cluster) -> Iterator[Server]:
    reset(cluster.url)
    with running_server(cluster.url, **UNLIMITED) as running:
        yield running


def _client(server: Server) -> httpx.Client:
    # Longer than the pool's 5 s wait for a connection while PostgreSQL is away.
    return httpx.Client(base_url=server.url, timeout=30)


def _stored_ids(url: str) -> list[str]:
    return sorted(row[2] for row in rows(url, "event_receipts"))


def _consistent(url: str) -> None:
    """Nothing half-written: every receipt has its call, and the rollups count every call."""
    receipts = _stored_ids(url)
    calls = sorted(row[2] for row in rows(url, "llm_calls"))
    assert calls == receipts
    per_day = rows(url, "llm_totals_1d")
    assert sum(row[5] + row[6] for row in per_day) == len(calls)


def _wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"waited {seconds} s for {what}"
        time.sleep(0.05)


def test_postgres_down_mid_ingest_is_503_then_recovers_with_nothing_lost(cluster, server, key):
    acknowledged: list[list[dict]] = []
    refused: list[list[dict]] = []
    refusals: list[httpx.Response] = []
    stop = threading.Event()

    def ingester() -> None:
        with _client(server) as client:
            n = 0
            while not stop.is_set():
                batch = [llm_call(id=f"call-{n}-{i}") for i in range(50)]
                n += 1
                response = post_events(client, key, batch)
                if response.status_code == 200:
                    acknowledged.append(batch)
                else:
                    refused.append(batch)
                    refusals.append(response)

    thread = threading.Thread(target=ingester)
    thread.start()
    try:
        _wait_for(lambda: len(acknowledged) >= 3, 30, "batches before the stop")
        cluster.stop(mode="immediate")
        _wait_for(lambda: len(refusals) >= 2, 30, "refusals while PostgreSQL is down")
        ready = httpx.get(f"{server.url}/readyz", timeout=10)
        assert ready.status_code == 503
        assert ready.headers["content-type"] == "application/problem+json"
        before_restart = len(acknowledged)
        cluster.start()
        _wait_for(
            lambda: httpx.get(f"{server.url}/readyz", timeout=10).status_code == 200,
            30,
            "readiness after the restart",
        )
        _wait_for(lambda: len(acknowledged) >= before_restart + 3, 30, "batches after")
    finally:
        stop.set()
        thread.join(timeout=60)
    assert server.process.poll() is None  # recovered without a restart of the service
    for response in refusals:
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"
        assert int(response.headers["retry-after"]) > 0
    stored = set(_stored_ids(cluster.url))
    assert {event["id"] for batch in acknowledged for event in batch} <= stored
    _consistent(cluster.url)
    # Sent again, the refused batches are stored once: whatever was stored is a duplicate.
    with _client(server) as client:
        for batch in refused:
            result = post_events(client, key, batch).json()
            assert result["accepted"] + result["duplicates"] == len(batch)
    every_id = {event["id"] for batch in acknowledged + refused for event in batch}
    assert _stored_ids(cluster.url) == sorted(every_id)
    _consistent(cluster.url)


def test_while_postgres_is_down_requests_are_refused_at_once(cluster, server, key):
    with _client(server) as client:
        assert post_events(client, key, [llm_call(id="before")]).status_code == 200
        cluster.stop()
        try:
            # The outage becomes known (the first requests wait out the grace), then...
            _wait_for(
                lambda: post_events(client, key, [llm_call()]).status_code == 503, 30, "a refusal"
            )
            time.sleep(GRACE)
            for _ in range(5):
                started = time.monotonic()
                refused = post_events(client, key, [llm_call()])
                waited = time.monotonic() - started
                assert refused.status_code == 503
                assert int(refused.headers["retry-after"]) > 0
                # ...every request is answered at once, not after a 5 s pool timeout.
                assert waited < 1.0, f"a refusal took {waited:.2f} s"
            assert httpx.get(f"{server.url}/readyz", timeout=10).status_code == 503
        finally:
            cluster.start()
        _wait_for(
            lambda: post_events(client, key, [llm_call(id="after")]).status_code == 200,
            10,
            "the first request after the outage",
        )
    assert _stored_ids(cluster.url) == ["after", "before"]


def test_a_request_during_a_short_restart_is_served(cluster, server, key):
    with _client(server) as client:
        assert post_events(client, key, [llm_call(id="warm")]).status_code == 200
        for attempt in range(3):
            cluster.stop(mode="immediate")
            with ThreadPoolExecutor(1) as pool:
                # Sent while PostgreSQL is down; it comes back about a second later.
                answer = pool.submit(post_events, client, key, [llm_call(id=f"during-{attempt}")])
                time.sleep(0.3)
                cluster.start()
                response = answer.result(timeout=30)
            assert response.status_code == 200, response.text
    assert _stored_ids(cluster.url) == ["during-0", "during-1", "during-2", "warm"]


def _set_read_only(url: str, on: bool) -> None:
    with connect(url) as conn:
        conn.execute(f"ALTER SYSTEM SET default_transaction_read_only = {'on' if on else 'off'}")
        conn.execute("SELECT pg_reload_conf()")


def test_a_read_only_database_is_503_and_not_ready(cluster, server, key):
    with _client(server) as client:
        assert post_events(client, key, [llm_call(id="writable")]).status_code == 200
        _set_read_only(cluster.url, True)
        try:
            time.sleep(0.5)  # the reload reaches every backend
            refused = post_events(client, key, [llm_call(id="read-only")])
            assert refused.status_code == 503
            assert "read-only" in refused.json()["detail"]
            assert int(refused.headers["retry-after"]) > 0
            ready = httpx.get(f"{server.url}/readyz")
            assert ready.status_code == 503
            assert "read-only" in ready.json()["detail"]
        finally:
            _set_read_only(cluster.url, False)
        time.sleep(0.5)
        assert httpx.get(f"{server.url}/readyz").status_code == 200
        assert post_events(client, key, [llm_call(id="read-only")]).status_code == 200
    assert _stored_ids(cluster.url) == ["read-only", "writable"]


def test_the_same_batch_from_two_connections_at_once_is_stored_once(cluster, server, key):
    for attempt in range(5):
        batch = [llm_call(id=f"twice-{attempt}-{i}") for i in range(200)]
        start = threading.Barrier(2)

        def send(batch: list[dict] = batch, start: threading.Barrier = start) -> dict:
            with _client(server) as client:
                start.wait()
                return post_events(client, key, batch).json()

        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(lambda _: send(), range(2)))
        assert sum(r["accepted"] for r in results) == len(batch)
        assert sum(r["duplicates"] for r in results) == len(batch)
    assert len(_stored_ids(cluster.url)) == 5 * 200
    _consistent(cluster.url)


def _raw_request(url: str, head: bytes, body: bytes) -> socket.socket:
    parts = urlsplit(url)
    conn = socket.create_connection((parts.hostname, parts.port))
    conn.sendall(head + body)
    return conn


def test_clients_hanging_up_mid_request_change_nothing_and_harm_no_one(cluster, server, key):
    batch = [llm_call(id=f"gone-{i}") for i in range(1000)]
    body = httpx.Request("POST", "http://x", json=batch).content
    head = (
        f"POST /events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: {BATCH}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    # Half the body, then gone: nothing of it may be stored.
    _raw_request(server.url, head, body[: len(body) // 2]).close()
    # The whole body, then gone before the answer: all of it or nothing.
    _raw_request(server.url, head, body).close()
    time.sleep(1.0)
    assert len(_stored_ids(cluster.url)) in (0, len(batch))
    _consistent(cluster.url)
    with _client(server) as client:
        result = post_events(client, key, batch).json()
    assert result["accepted"] + result["duplicates"] == len(batch)
    assert len(_stored_ids(cluster.url)) == len(batch)
    assert server.process.poll() is None


def test_sigterm_finishes_the_request_in_flight_then_exits(cluster, server, key):
    batch = [llm_call(id=f"last-{i}") for i in range(10_000)]
    with ThreadPoolExecutor(1) as pool, _client(server) as client:
        answer = pool.submit(post_events, client, key, batch)
        _wait_for(
            lambda: (
                'usage_requests_in_progress{method="POST"} 1.0'
                in httpx.get(f"{server.url}/metrics").text
            ),
            30,
            "the batch to be in flight",
        )
        server.process.send_signal(signal.SIGTERM)
        response = answer.result(timeout=60)
    assert response.status_code == 200
    assert response.json()["accepted"] == len(batch)
    # Uvicorn exits through the signal it caught once the shutdown is complete.
    assert server.process.wait(timeout=40) in (0, -signal.SIGTERM)
    assert len(_stored_ids(cluster.url)) == len(batch)
