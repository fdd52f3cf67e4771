"""Usage thresholds at the bench's scale (DESIGN §10): 10,000 thresholds over the bench's
organizations and the ingest organization; one watcher pass with every one of them due,
timed (evaluation, then the deliveries to a receiver on 127.0.0.1); then the watcher's cost
to ingest and reads: the same ingest and reads against a server without a watcher and one
whose watcher passes every second, back to back."""

import itertools
import sys
import time
from datetime import UTC, datetime, timedelta

import psycopg
from sqlalchemy import delete, func, update

from api.alerts.watcher import deliver_once, evaluate_once
from api.storage.db import compile_statement, connect_kwargs, execute
from api.storage.schema import metadata, threshold_marks, thresholds
from api.storage.thresholds import create_threshold
from bench import load
from testkit.receiver import RECEIVER_HOSTS, receiver
from testkit.server import live_server

COUNT = 10_000
_MEASURES = [
    ("llm", "input_tokens"),
    ("llm", "output_tokens"),
    ("llm", "successful_requests"),
    ("compute", "cpu_core_hours"),
    ("compute", "ram_gb_hours"),
    ("storage", "storage_gb_hours"),
    ("platform", "messages_sent"),
    ("platform", "threads_created"),
]
_FILTERS = {
    "llm": [{}, {}, {"model": ["model-0"]}, {"identity": ["agent:id-1"]}],
    "compute": [{}, {"agent": ["id-7"]}],
    "storage": [{}, {"agent": ["id-7"]}],
    "platform": [{}, {"identity": ["agent:id-3"]}],
}
_PERIODS = ["day", "week", "month"]
_ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"]
# Limits from 1 to 10^9 in steps of 10^(1/4): each figure is over some and under most.
_LIMITS = [10 ** (step / 4) for step in range(37)]
_PUBLIC = "http://127.0.0.1:8000"
_THRESHOLD_TABLES = [t for t in metadata.sorted_tables if t.name.startswith("threshold")]
_EVENT_TABLES = [t for t in reversed(metadata.sorted_tables) if t not in _THRESHOLD_TABLES]


async def create(database_url: str, orgs: list[str], url: str) -> dict[str, str]:
    """COUNT thresholds, a share of every organization: threshold id → its secret."""
    specs = itertools.cycle(
        itertools.product(_MEASURES, _PERIODS, _ZONES, range(4), range(len(_LIMITS)))
    )
    secrets = {}
    started = time.perf_counter()
    async with await psycopg.AsyncConnection.connect(database_url, **connect_kwargs()) as conn:
        await execute(conn, compile_statement(delete(thresholds)))
        for n in range(COUNT):
            (section, measure), period, tz, variant, limit = next(specs)
            threshold, secret = await create_threshold(
                conn,
                orgs[n % len(orgs)],
                section=section,
                measure=measure,
                period=period,
                tz=tz,
                limit=_LIMITS[(limit * 7 + n) % len(_LIMITS)],
                filters=_FILTERS[section][variant % len(_FILTERS[section])],
                url=url,
            )
            secrets[threshold.threshold_id] = secret
            if n % 500 == 499:
                rate = (n + 1) / (time.perf_counter() - started)
                print(f"\r  thresholds created: {n + 1:,} ({rate:,.0f}/s)", end="", file=sys.stderr)
    print(file=sys.stderr)
    return secrets


async def full_pass(database_url: str) -> dict:
    """One watcher pass with every threshold due. As if created an hour ago: settled (a new
    threshold is looked at again 6 minutes after its creation, which would make 10,000 made
    at once all due again in the middle of the next measurement)."""
    settled = update(thresholds).values(
        created_at=func.now() - timedelta(hours=1), recheck_at=func.now()
    )
    async with await psycopg.AsyncConnection.connect(database_url, **connect_kwargs()) as conn:
        await execute(conn, compile_statement(settled))
        started = time.perf_counter()
        evaluation = await evaluate_once(conn)
        evaluated = time.perf_counter()
        deliveries = await deliver_once(conn, allowed_hosts=RECEIVER_HOSTS, public_url=_PUBLIC)
        delivered = time.perf_counter()
        assert evaluation is not None and deliveries is not None, "another watcher is running"
    return {
        "thresholds": evaluation.thresholds,
        "orgs": evaluation.orgs,
        "spans_read": evaluation.spans_read,
        "crossings": len(evaluation.crossings),
        "evaluation_s": evaluated - started,
        "thresholds_per_second": evaluation.thresholds / (evaluated - started),
        "deliveries": deliveries.attempted,
        "delivered": deliveries.delivered,
        "delivery_s": delivered - evaluated,
    }


def _now() -> datetime:
    return datetime.now(UTC)


async def _clear_ingest_org(database_url: str) -> None:
    """The ingest organization's events (not its thresholds) and every mark, gone."""
    async with await psycopg.AsyncConnection.connect(database_url, **connect_kwargs()) as conn:
        for table in _EVENT_TABLES:
            where = table.c.org_id == load.INGEST_ORG
            await execute(conn, compile_statement(delete(table).where(where)))
        await execute(conn, compile_statement(delete(threshold_marks)))


async def _run(base_url: str, database_url: str, keys: dict, big: str, now, requests: int):
    await _clear_ingest_org(database_url)
    ingest = await load.ingest(base_url, keys["ingest"], batches=60)
    reads = {
        f"{section} {preset}": await load.latency(
            base_url, keys[big], f"/orgs/{big}/usage/{section}", {"range": preset}, now, requests
        )
        for section in ("llm", "compute")
        for preset in ("24h", "30d")
    }
    return {"ingest_events_per_second": ingest["events_per_second"], "reads": reads}


async def cost(
    database_url: str, keys: dict, big: str, now: datetime, requests: int, rounds: int = 2
) -> dict:
    """Ingest (into an organization with thresholds) and reads of the big organization
    against a server without a watcher and one watching every second, taking turns
    ``rounds`` times; each setting's best round (the highest rate, each cell's lowest p95),
    so that both get the same chance against the machine's noise."""
    runs: dict[str, list[dict]] = {"without": [], "with": []}
    for turn in range(rounds):
        for label, watching in (("without", "0"), ("with", "1")):
            environment = {
                "USAGE_RATE_LIMIT": "0",
                "USAGE_WATCH_IN_SERVER": watching,
                "USAGE_WATCH_INTERVAL": "1",
                "USAGE_WEBHOOK_ALLOW_HOSTS": ",".join(RECEIVER_HOSTS),
            }
            with live_server(database_url, **environment) as base_url:
                runs[label].append(await _run(base_url, database_url, keys, big, now, requests))
            print(f"  the watcher's cost: round {turn + 1}, {label} it", file=sys.stderr)
    found = {
        label: {
            "ingest_events_per_second": max(r["ingest_events_per_second"] for r in done),
            "reads": {
                cell: min((r["reads"][cell] for r in done), key=lambda f: f["p95_ms"])
                for cell in done[0]["reads"]
            },
        }
        for label, done in runs.items()
    }
    ingest_ratio = (
        found["with"]["ingest_events_per_second"] / found["without"]["ingest_events_per_second"]
    )
    read_ratio = max(
        found["with"]["reads"][cell]["p95_ms"] / found["without"]["reads"][cell]["p95_ms"]
        for cell in found["with"]["reads"]
    )
    return {**found, "ingest_ratio": ingest_ratio, "read_p95_ratio": read_ratio, "rounds": rounds}


async def run(database_url: str, orgs: list[str], keys: dict, now: datetime, requests: int) -> dict:
    """Everything above; the thresholds are deleted at the end (the bench's data stays as
    generated)."""
    with receiver() as hook:
        hook.secrets = await create(database_url, [*orgs, load.INGEST_ORG], hook.url)
        found = {"pass": await full_pass(database_url)}
        found["receiver_verified"] = all(r.verified for r in hook.received)
        found["cost"] = await cost(database_url, keys, orgs[0], now, requests)
    async with await psycopg.AsyncConnection.connect(database_url, **connect_kwargs()) as conn:
        for table in _THRESHOLD_TABLES:
            await execute(conn, compile_statement(delete(table)))
    return found


def report(found: dict) -> None:
    done = found["pass"]
    print(
        f"\nThresholds: one pass over {done['thresholds']:,} of {done['orgs']} organizations "
        f"(all due): {done['evaluation_s']:.2f} s, {done['thresholds_per_second']:,.0f}/s, "
        f"{done['spans_read']:,} spans read; {done['crossings']:,} crossed, "
        f"{done['delivered']:,} of {done['deliveries']:,} webhooks delivered in "
        f"{done['delivery_s']:.2f} s"
    )
    cost = found["cost"]
    print(
        f"  the watcher's cost (best of {cost['rounds']} turns each): ingest "
        f"{cost['without']['ingest_events_per_second']:,.0f} -> "
        f"{cost['with']['ingest_events_per_second']:,.0f} events/s "
        f"({cost['ingest_ratio']:.2f}x); reads' p95, with over without:"
    )
    for cell, without in cost["without"]["reads"].items():
        with_it = cost["with"]["reads"][cell]
        print(
            f"    {cell:<14}{without['p95_ms']:>8.1f} -> {with_it['p95_ms']:>6.1f} ms "
            f"({with_it['p95_ms'] / without['p95_ms']:.2f}x)"
        )
