"""The cost of one event and of one request, against the same run's floors.

Ingest (1,000-call batches from 4 clients) is measured with the server process's CPU time
(/proc) and PostgreSQL's statement time (pg_stat_statements, where the cluster loads it)
per 1,000 events, the fold included: the queue is drained inside the measured span. The
same calls as OpenTelemetry GenAI spans (POST /v1/traces) follow, as a multiple of it. A small
read (platform, 24h) is measured as its latency minus PostgreSQL's time for it: the
server's own overhead. Beside both, the floors of the same run: `GET /healthz`'s latency and
PostgreSQL's COPY of the same rows, because these machines vary 2-3x from day to day and a
multiple of a floor moves far less than an absolute figure.
"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path

import psycopg

from api.storage.db import connect_kwargs
from bench import cpu, load, queue
from testkit.server import Server

_STATEMENTS = (
    "SELECT coalesce(sum(total_exec_time), 0), coalesce(sum(calls), 0) FROM pg_stat_statements"
)


async def statement_ms(database_url: str) -> float | None:
    """PostgreSQL's total statement time so far, in ms; None where pg_stat_statements is not
    loaded (a cluster the bench did not start)."""
    async with await psycopg.AsyncConnection.connect(database_url, **connect_kwargs()) as conn:
        try:
            await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            cursor = await conn.execute(_STATEMENTS)
        except psycopg.Error:
            return None
        (total_ms, _calls) = await cursor.fetchone()
        return float(total_ms)


@asynccontextmanager
async def costed(
    database_url: str, server: Server, nodes: dict[str, Path]
) -> AsyncIterator[dict[str, float | None]]:
    """The server's CPU seconds, PostgreSQL's statement ms and each node's CPU seconds spent
    in the block, in the dict yielded (filled on exit)."""
    pid = server.process.pid
    cpu_before, statements_before = cpu.process_times(pid)[0], await statement_ms(database_url)
    spent: dict[str, float | None] = {}
    with cpu.metered(nodes) as nodes_used:
        yield spent
    statements_after = await statement_ms(database_url)
    spent["server_cpu_s"] = cpu.process_times(pid)[0] - cpu_before
    spent["statements_ms"] = (
        None if statements_before is None else statements_after - statements_before
    )
    spent |= {f"{node}_cpu_s": seconds for node, seconds in nodes_used.items()}


async def run(
    database_url: str,
    server: Server,
    nodes: dict[str, Path],
    org: str,
    read_key: str,
    ingest_key: str,
    now: datetime,
    sections: list[str],
    requests: int,
) -> dict:
    base_url = server.url
    found: dict = {}
    found["healthz"] = await load.latency(base_url, read_key, "/healthz", {}, now, requests)
    reads = 4 * requests
    async with costed(database_url, server, nodes) as spent:
        small = await load.latency(
            base_url, read_key, f"/orgs/{org}/usage/platform", {"range": "24h"}, now, reads
        )
    reads += load.WARM_UP
    found["small_read"] = {
        **small,
        "server_cpu_ms": 1000 * spent["server_cpu_s"] / reads,
        "statements_ms": None if spent["statements_ms"] is None else spent["statements_ms"] / reads,
    }
    load.clear_ingest_orgs(database_url)
    async with (
        costed(database_url, server, nodes) as spent,
        queue.watched(database_url) as samples,
    ):
        ingest = await load.ingest(base_url, ingest_key)
        drain_seconds = await queue.drained(database_url)
    thousands = ingest["batches"] * ingest["batch_size"] / 1000
    ingest["server_cpu_ms_per_1000"] = 1000 * spent.pop("server_cpu_s") / thousands
    statements = spent.pop("statements_ms")
    ingest["statements_ms_per_1000"] = None if statements is None else statements / thousands
    ingest["cpu_ms_per_1000_events"] = {
        node.removesuffix("_cpu_s"): 1000 * seconds / thousands for node, seconds in spent.items()
    }
    ingest["queue"] = {**queue.summary(samples), "drained_after_s": drain_seconds}
    copy_rate = await asyncio.to_thread(load.copy_rows_per_second, database_url)
    ingest["copy_rows_per_second"] = copy_rate
    ingest["share_of_copy"] = ingest["events_per_second"] / copy_rate
    found["ingest"] = ingest
    found["otlp_ingest"] = await load.otlp_ingest(base_url, ingest_key)
    await queue.drained(database_url)
    found["mixed_ingest"] = await load.mixed_ingest(base_url, ingest_key)
    await queue.drained(database_url)
    found["page_loads"] = await load.page_loads(base_url, org, read_key, sections)
    return found


def report(found: dict) -> None:
    floor = found["healthz"]["p50_ms"]
    small = found["small_read"]
    overhead = None if small["statements_ms"] is None else small["p50_ms"] - small["statements_ms"]
    print(
        f"\nThe floor: GET /healthz p50 {floor:.2f} ms\n"
        f"A small read (platform 24h): p50 {small['p50_ms']:.2f} ms ({small['p50_ms'] / floor:.1f}x"
        f" /healthz), server CPU {small['server_cpu_ms']:.2f} ms a request"
        + (
            ""
            if overhead is None
            else f", PostgreSQL {small['statements_ms']:.2f} ms, the server's own {overhead:.2f} ms"
        )
    )
    ingest = found["ingest"]
    waiting = ingest["queue"]
    statements = ingest["statements_ms_per_1000"]
    print(
        f"\nIngest over HTTP: {ingest['events_per_second']:,.0f} events/s "
        f"({ingest['batches']} batches of {ingest['batch_size']:,}, {ingest['resent_share']:.0%} "
        f"re-sent, {ingest['clients']} clients); batch p50 {ingest['p50_ms']:.1f} ms, "
        f"p99 {ingest['p99_ms']:.1f} ms; duplicates counted {ingest['duplicates']:,}\n"
        f"  per 1,000 events: server CPU {ingest['server_cpu_ms_per_1000']:.1f} ms, "
        + ("" if statements is None else f"PostgreSQL statements {statements:.1f} ms, ")
        + ", ".join(
            f"{node} CPU {ms:.1f} ms" for node, ms in ingest["cpu_ms_per_1000_events"].items()
        )
        + f"\n  queue: at most {waiting['max_rows']:,} events, the oldest waiting "
        f"{waiting['oldest_p99_s']:.2f} s at p99 ({waiting['oldest_max_s']:.2f} s at most), "
        f"empty {waiting['drained_after_s']:.2f} s after the last batch\n"
        f"  PostgreSQL's COPY of the same rows: {ingest['copy_rows_per_second']:,.0f} rows/s; "
        f"ingest is {ingest['share_of_copy']:.1%} of it"
    )
    otlp = found["otlp_ingest"]
    print(
        f"The same calls as GenAI spans (OTLP protobuf, POST /v1/traces): "
        f"{otlp['events_per_second']:,.0f} events/s "
        f"({otlp['events_per_second'] / ingest['events_per_second']:.2f}x POST /events); "
        f"batch p50 {otlp['p50_ms']:.1f} ms, p99 {otlp['p99_ms']:.1f} ms"
    )
    mixed = found["mixed_ingest"]
    print(
        f"Ingest of the load test's mix over HTTP: {mixed['events_per_second']:,.0f} events/s"
        f" ({mixed['batches']} batches of {mixed['batch_size']:,}, {mixed['clients']} clients);"
        f" batch p50 {mixed['p50_ms']:.1f} ms, p99 {mixed['p99_ms']:.1f} ms"
    )
    pages = found["page_loads"]
    print(
        f"Page loads (4 sections in parallel): {pages['per_second']:,.0f}/s, "
        f"p50 {pages['p50_ms']:.1f} ms ({pages['p50_ms'] / floor:.1f}x /healthz)"
    )
