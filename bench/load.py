"""Load over HTTP against the real server: reads per section and preset, ingest batches
with re-sends, and page loads (four sections at once)."""

import asyncio
import sys
import time
from datetime import UTC, datetime, timedelta

import httpx
import msgspec
import psycopg
from sqlalchemy import delete

from api.storage.db import compile_statement, connect_kwargs, execute_sync
from api.storage.schema import metadata
from bench.stats import percentiles
from testkit import spans
from testkit.factories import BATCH
from testkit.traffic import Events


async def reads(
    base_url: str,
    org: str | None,
    key: str,
    now: datetime,
    sections: list[str],
    presets: list[str],
    requests: int,
) -> dict:
    """p50/p95 per section and preset of one organization's reads, or (``org`` None) of the
    admin's reads over every organization; one request at a time (latency, not throughput)."""
    prefix, label = ("", "all orgs") if org is None else (f"/orgs/{org}", org)
    found: dict = {}
    for section in sections:
        for preset in presets:
            found.setdefault(section, {})[preset] = await latency(
                base_url, key, f"{prefix}/usage/{section}", {"range": preset}, now, requests
            )
            progress(f"reads {label} {section} {preset}", found[section][preset])
    print(file=sys.stderr)
    return found


WARM_UP = 5  # requests before the timed ones: they warm the caches


async def latency(
    base_url: str,
    key: str,
    path: str,
    params: dict,
    now: datetime,
    requests: int,
    warm_up: int = WARM_UP,
) -> dict:
    """p50/p95 of one GET, one request at a time (latency, not throughput), each with a
    different snapshot time (``end``) so that nothing can be served twice."""
    samples = []
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=60) as client:
        for n in range(requests + warm_up):
            end = (now - timedelta(seconds=37 * n)).isoformat()
            started = time.perf_counter()
            response = await client.get(path, params={**params, "end": end})
            elapsed = (time.perf_counter() - started) * 1000
            response.raise_for_status()
            if n >= warm_up:
                samples.append(elapsed)
    return percentiles(samples)


def progress(label: str, found: dict) -> None:
    print(
        f"\r  {label}: p95 {found['p95_ms']:.1f} ms          ", end="", file=sys.stderr, flush=True
    )


INGEST_ORG = "bench-ingest"  # ingest's organization, emptied before each run
OTLP_ORG = "bench-otlp"  # the same calls as GenAI spans, through POST /v1/traces
BESIDE_READS_ORG = "bench-ingest-beside-reads"
MIXED_ORGS = [f"bench-mixed-{n}" for n in range(4)]
INGEST_ORGS = [INGEST_ORG, OTLP_ORG, BESIDE_READS_ORG, *MIXED_ORGS]


def clear_ingest_orgs(database_url: str) -> None:
    """Every row of the organizations ingest sends to: what an earlier run sent."""
    with psycopg.connect(database_url, **connect_kwargs()) as conn:
        for table in reversed(metadata.sorted_tables):
            for org in INGEST_ORGS:
                execute_sync(conn, compile_statement(delete(table).where(table.c.org_id == org)))


def _call(n: int, now: datetime, org: str = INGEST_ORG) -> dict:
    return {
        "specversion": "1.0",
        "id": f"ingest-{n}",
        "source": "bench",
        "type": "llm.call",
        "subject": org,
        "time": (now - timedelta(seconds=n % 86_400)).isoformat(),
        "data": {
            "identity": {"kind": "agent", "id": f"id-{n % 300}", "name": f"Agent {n % 300}"},
            "model": f"model-{n % 8}",
            "input_tokens": 1000 + n % 500,
            "cached_tokens": n % 700,
            "output_tokens": 100 + n % 50,
            "succeeded": n % 50 != 0,
        },
    }


def _batches(batches: int, batch_size: int, clients: int, now: datetime, org: str) -> list[list]:
    """The calls of each batch: new ones plus 10% sent before, a batch's from ``2 *
    clients`` batches earlier, answered by then, as a client re-sends after a timeout: a
    re-send racing its original waits for the original's transaction (tests/ingest check
    that case), and re-sending the batch just before from every client turns the clients
    into one queue."""
    resent = batch_size // 10
    return [
        [_call(b * batch_size + i, now, org) for i in range(batch_size - resent)]
        + [_call(max(b - 2 * clients, 0) * batch_size + i, now, org) for i in range(resent)]
        for b in range(batches)
    ]


async def ingest(
    base_url: str, key: str, batches: int = 120, batch_size: int = 1000, clients: int = 4
) -> dict:
    """Batches of LLM calls, 10% of them sent before (``_batches``), from several clients
    at once, into an organization emptied first."""
    calls = _batches(batches, batch_size, clients, datetime.now(UTC), INGEST_ORG)
    bodies = [msgspec.json.encode(batch) for batch in calls]
    found = await _post_all(base_url, key, bodies, batch_size, clients)
    return {**found, "resent_share": 0.1}


async def otlp_ingest(
    base_url: str, key: str, batches: int = 120, batch_size: int = 1000, clients: int = 4
) -> dict:
    """The same batches as ``ingest``'s as GenAI spans, in OTLP's protobuf, through
    POST /v1/traces."""
    calls = _batches(batches, batch_size, clients, datetime.now(UTC), OTLP_ORG)
    bodies = [spans.protobuf_request([spans.of_call(call) for call in batch]) for batch in calls]
    return await _post_all(base_url, key, bodies, batch_size, clients, "/v1/traces", spans.PROTOBUF)


async def mixed_ingest(
    base_url: str, key: str, batches: int = 60, batch_size: int = 1000, clients: int = 4
) -> dict:
    """Batches of the load test's mix (testkit.traffic.Events: 60% LLM calls, workloads,
    volumes, threads, messages) for four organizations, times within the last day, from
    several clients at once."""
    now = datetime.now(UTC)
    events = Events(7, MIXED_ORGS, lambda rng: now - timedelta(seconds=rng.uniform(0, 86_400)))
    bodies = [
        msgspec.json.encode([events.next() for _ in range(batch_size)]) for _ in range(batches)
    ]
    return await _post_all(base_url, key, bodies, batch_size, clients)


async def _post_all(
    base_url: str,
    key: str,
    bodies: list[bytes],
    batch_size: int,
    clients: int,
    path: str = "/events",
    content_type: str = BATCH,
) -> dict:
    """Every batch (of ``batch_size`` events) posted, by ``clients`` clients at once taking
    the next batch in turn."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": content_type}
    latencies: list[float] = []
    duplicates = 0
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)

    async def client_loop() -> None:
        nonlocal duplicates
        async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=60) as client:
            while not queue.empty():
                body = queue.get_nowait()
                started = time.perf_counter()
                response = await client.post(path, content=body)
                latencies.append((time.perf_counter() - started) * 1000)
                response.raise_for_status()
                if content_type == BATCH:  # OTLP's answer does not count duplicates
                    duplicates += response.json()["duplicates"]

    started = time.perf_counter()
    await asyncio.gather(*(client_loop() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    return {
        "events_per_second": len(bodies) * batch_size / elapsed,
        "batches": len(bodies),
        "batch_size": batch_size,
        "clients": clients,
        "duplicates": duplicates,
        **percentiles(latencies),
    }


async def reads_beside_ingest(
    base_url: str,
    org: str,
    key: str,
    ingest_key: str,
    now: datetime,
    sections: list[str],
    presets: list[str],
    requests: int,
    rate: float = 10_000,
) -> dict:
    """``reads`` while new LLM calls arrive at ``rate`` events/s (1,000-event batches on a
    fixed schedule, at most 4 in flight), and the rate they were acknowledged at."""
    batch_size, in_flight_limit = 1000, 4
    interval = batch_size / rate
    # Enough batches for the reads at three times their idle duration; made beforehand, so
    # that encoding them does not take the cores the reads are timed on.
    planned = int(len(sections) * len(presets) * (requests + WARM_UP) * 0.03 / interval) + 1
    sent_at = datetime.now(UTC)
    bodies = [
        msgspec.json.encode(
            [_call(b * batch_size + i, sent_at, BESIDE_READS_ORG) for i in range(batch_size)]
        )
        for b in range(planned)
    ]
    headers = {"Authorization": f"Bearer {ingest_key}", "Content-Type": BATCH}
    done = asyncio.Event()
    acknowledged = 0

    async def ingester() -> None:
        limits = httpx.Limits(max_connections=in_flight_limit)
        async with httpx.AsyncClient(
            base_url=base_url, headers=headers, timeout=60, limits=limits
        ) as client:
            slots = asyncio.Semaphore(in_flight_limit)

            async def post(body: bytes) -> None:
                nonlocal acknowledged
                async with slots:
                    response = await client.post("/events", content=body)
                    response.raise_for_status()
                    acknowledged += batch_size

            posts = []
            next_at = time.perf_counter()
            for body in bodies:
                if done.is_set():
                    break
                posts.append(asyncio.create_task(post(body)))
                next_at += interval
                await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
            await asyncio.gather(*posts)

    started = time.perf_counter()
    sending = asyncio.create_task(ingester())
    found = await reads(base_url, org, key, now, sections, presets, requests)
    done.set()
    elapsed = time.perf_counter() - started
    await sending
    return {"reads": found, "ingest_events_per_second": acknowledged / elapsed, "rate": rate}


async def page_loads(
    base_url: str, org: str, key: str, sections: list[str], seconds: float = 10, loaders: int = 8
) -> dict:
    """Page loads per second: each load is one GET per section, in parallel, same end."""
    headers = {"Authorization": f"Bearer {key}"}
    done = 0
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=loaders * len(sections))
    async with httpx.AsyncClient(
        base_url=base_url, headers=headers, timeout=60, limits=limits
    ) as client:

        async def loader() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                params = {"range": "24h", "end": datetime.now(UTC).isoformat()}
                started = time.perf_counter()
                answers = await asyncio.gather(
                    *(client.get(f"/orgs/{org}/usage/{s}", params=params) for s in sections)
                )
                for answer in answers:
                    answer.raise_for_status()
                latencies.append((time.perf_counter() - started) * 1000)
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(loader() for _ in range(loaders)))
        elapsed = time.perf_counter() - started
    return {"per_second": done / elapsed, "loaders": loaders, **percentiles(latencies)}


def copy_rows_per_second(database_url: str, events: int = 120_000) -> float:
    """PostgreSQL's own rate for the raw rows of the calls ``ingest`` sends: COPY into a
    plain table with a unique (source, id) index, in the same cluster. Ingest is measured
    as a share of it, which moves less than events/s from one machine to the next."""
    now = datetime.now(UTC)
    rows = []
    for n in range(events):
        call = _call(n, now)
        data = call["data"]
        rows.append(
            (
                call["subject"],
                call["source"],
                call["id"],
                datetime.fromisoformat(call["time"]),
                data["identity"]["kind"],
                data["identity"]["id"],
                data["model"],
                data["input_tokens"],
                data["cached_tokens"],
                data["output_tokens"],
                data["succeeded"],
            )
        )
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_copy")
        conn.execute(
            "CREATE TABLE bench_copy (org_id text, source text, event_id text,"
            " time timestamptz, identity_kind text, identity_id text, model text,"
            " input_tokens bigint, cached_tokens bigint, output_tokens bigint,"
            " succeeded boolean, UNIQUE (source, event_id))"
        )
        started = time.perf_counter()
        with conn.cursor() as cursor, cursor.copy("COPY bench_copy FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        elapsed = time.perf_counter() - started
        conn.execute("DROP TABLE bench_copy")
    return events / elapsed
