"""Faults: PostgreSQL going away mid-ingest, the same batch from two connections at once,
clients hanging up mid-request, and shutting down with a request in flight. Each against
the real server over its own durable PostgreSQL cluster, which these tests stop and start."""

import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
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
from testkit import faults
from testkit.database import reset, with_connection
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


def test_postgres_down_mid_ingest_is_503_then_recovers_with_nothing_lost(cluster, server, key):
    def readiness_says_down() -> None:
        ready = httpx.get(f"{server.url}/readyz", timeout=10)
        assert ready.status_code == 503
        assert ready.headers["content-type"] == "application/problem+json"

    faults.ingest_through_an_outage(
        server,
        key,
        cluster.url,
        stop=lambda: cluster.stop(mode="immediate"),
        start=cluster.start,
        batch=lambda n: [llm_call(id=f"call-{n}-{i}") for i in range(50)],
        while_down=readiness_says_down,
    )


def test_while_postgres_is_down_requests_are_refused_at_once(cluster, server, key):
    with faults.client(server) as client:
        assert post_events(client, key, [llm_call(id="before")]).status_code == 200
        cluster.stop()
        try:
            # The outage becomes known (the first requests wait out the grace), then...
            faults.wait_for(
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
        faults.wait_for(
            lambda: post_events(client, key, [llm_call(id="after")]).status_code == 200,
            10,
            "the first request after the outage",
        )
    assert faults.stored_ids(cluster.url) == ["after", "before"]


def test_a_request_during_a_short_restart_is_served(cluster, server, key):
    served = ["warm"]
    with faults.client(server) as client:
        assert post_events(client, key, [llm_call(id="warm")]).status_code == 200
        for attempt in range(3):
            cluster.stop(mode="immediate")
            with ThreadPoolExecutor(1) as pool:
                # Sent while PostgreSQL is down; it comes back about a second later.
                down_since = time.monotonic()
                answer = pool.submit(post_events, client, key, [llm_call(id=f"during-{attempt}")])
                time.sleep(0.3)
                cluster.start()
                down = time.monotonic() - down_since
                response = answer.result(timeout=30)
            # Within the grace the request waits and is served; a restart slowed past it (a
            # loaded machine's crash recovery) is refused, as any outage that long is.
            if down < GRACE - 0.2:
                assert response.status_code == 200, response.text
            elif down > GRACE + 0.2:
                assert response.status_code == 503, response.text
            if response.status_code == 200:
                served.append(f"during-{attempt}")
    assert faults.stored_ids(cluster.url) == sorted(served)


def _set_read_only(url: str, on: bool) -> None:
    with connect(url) as conn:
        conn.execute(f"ALTER SYSTEM SET default_transaction_read_only = {'on' if on else 'off'}")
        conn.execute("SELECT pg_reload_conf()")


def test_a_read_only_database_is_503_and_not_ready(cluster, server, key):
    with faults.client(server) as client:
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
    assert faults.stored_ids(cluster.url) == ["read-only", "writable"]


def test_the_same_batch_from_two_connections_at_once_is_stored_once(cluster, server, key):
    for attempt in range(5):
        batch = [llm_call(id=f"twice-{attempt}-{i}") for i in range(200)]
        start = threading.Barrier(2)

        def send(batch: list[dict] = batch, start: threading.Barrier = start) -> dict:
            with faults.client(server) as client:
                start.wait()
                return post_events(client, key, batch).json()

        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(lambda _: send(), range(2)))
        assert sum(r["accepted"] for r in results) == len(batch)
        assert sum(r["duplicates"] for r in results) == len(batch)
    assert len(faults.stored_ids(cluster.url)) == 5 * 200
    faults.consistent(cluster.url)


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
    assert len(faults.stored_ids(cluster.url)) in (0, len(batch))
    faults.consistent(cluster.url)
    with faults.client(server) as client:
        result = post_events(client, key, batch).json()
    assert result["accepted"] + result["duplicates"] == len(batch)
    assert len(faults.stored_ids(cluster.url)) == len(batch)
    assert server.process.poll() is None


def test_sigterm_finishes_the_request_in_flight_then_exits(cluster, server, key):
    batch = [llm_call(id=f"last-{i}") for i in range(10_000)]
    with ThreadPoolExecutor(1) as pool, faults.client(server) as client:
        answer = pool.submit(post_events, client, key, batch)
        faults.wait_for(
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
    assert len(faults.stored_ids(cluster.url)) == len(batch)
