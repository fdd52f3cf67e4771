"""Usage thresholds at the bench's scale (DESIGN §10): 10,000 thresholds over the bench's
organizations and the ingest organization; one watcher pass with every one of them due,
timed (evaluation, then the deliveries to a receiver on 127.0.0.1); then the watcher's cost
to ingest and reads: the same ingest and reads against a server without a watcher and one
whose watcher passes every second, back to back; then the deliveries' fairness: another
organization's webhooks while one organization's 1,000 receivers hang.

``python -m bench.thresholds`` measures the fairness alone, on a throwaway PostgreSQL."""

import asyncio
import itertools
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
from sqlalchemy import delete, func, update

from api.alerts.delivery import DEFAULT_BOUNDS
from api.alerts.watcher import deliver_once, evaluate_once
from api.dev.embedded_postgres import EmbeddedPostgres
from api.storage import migrations
from api.storage.db import compile_statement, connect_kwargs, execute
from api.storage.keys import Scope, create_key
from api.storage.schema import metadata, threshold_marks, thresholds
from api.storage.schema import orgs as organizations
from api.storage.thresholds import MAX_PER_ORG, create_threshold
from bench import load
from testkit.factories import BATCH, llm_call
from testkit.receiver import RECEIVER_HOSTS, Received, receiver
from testkit.server import UNLIMITED, live_server

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


HANGING = 1_000  # the hanging organization's thresholds: as many as one may have
_HANGING_HOSTS = 16  # their receivers (ports), more than an organization's share of slots
_HANGING_ORG, _OTHER_ORG = "bench-hanging", "bench-answered"
_SAMPLES = 8  # the other organization's crossings, one every _SPACING seconds
_SPACING = 4.0


async def _poll(done: Callable[[], bool], seen: Callable[[], None], seconds: float) -> None:
    """Until ``done`` (at most ``seconds``), calling ``seen`` every 20 ms meanwhile."""
    deadline = time.monotonic() + seconds
    while not done() and time.monotonic() < deadline:
        seen()
        await asyncio.sleep(0.02)


def _after_detection(got: Received) -> float:
    return got.at - datetime.fromisoformat(got.body["detected_at"]).timestamp()


async def fairness(database_url: str, ingest_key: str) -> dict:
    """One organization's HANGING thresholds all crossed at once, their receivers (on
    _HANGING_HOSTS ports) accepting every attempt and never answering (each held for the
    sender's 10 s); meanwhile another organization's thresholds crossed one at a time,
    _SPACING seconds apart, each timed from its detection to its receiver. A server as
    deployed: the watcher in it, its defaults."""
    with ExitStack() as stack:
        hanging = [
            stack.enter_context(receiver(answer=lambda _body, _nth: None))
            for _ in range(_HANGING_HOSTS)
        ]
        answering = stack.enter_context(receiver())
        most = 0

        def seen() -> None:
            nonlocal most
            most = max(most, sum(hook.hanging for hook in hanging))

        # Limits 1 for the hanging ones (the first call crosses them all); 50, 150, 250 ...
        # for the other's, each of its 100-token calls crossing the next one.
        made = [(_HANGING_ORG, hanging[n % _HANGING_HOSTS], 1) for n in range(HANGING)]
        made += [(_OTHER_ORG, answering, 100 * n + 50) for n in range(_SAMPLES)]
        async with await psycopg.AsyncConnection.connect(database_url, **connect_kwargs()) as conn:
            for org, hook, limit in made:
                threshold, secret = await create_threshold(
                    conn, org, section="llm", measure="input_tokens", period="day",
                    tz="UTC", limit=limit, filters={}, url=hook.url,
                )  # fmt: skip
                hook.secrets[threshold.threshold_id] = secret
        environment = {
            **UNLIMITED,
            "USAGE_WATCH_IN_SERVER": "1",
            "USAGE_WEBHOOK_ALLOW_HOSTS": ",".join(RECEIVER_HOSTS),
        }
        with live_server(database_url, **environment) as base_url:
            # A connection each call: calls are seconds apart, past the server's keep-alive,
            # and a kept one the server closes as a call reuses it is an httpx.ReadError.
            fresh = httpx.Limits(max_keepalive_connections=0)
            async with httpx.AsyncClient(base_url=base_url, timeout=30, limits=fresh) as client:

                async def call(org: str) -> None:
                    event = llm_call(
                        org=org, time=datetime.now(UTC), input_tokens=100, cached_tokens=0
                    )
                    answer = await client.post(
                        "/events",
                        json=[event],
                        headers={"Authorization": f"Bearer {ingest_key}", "Content-Type": BATCH},
                    )
                    answer.raise_for_status()

                await call(_HANGING_ORG)
                await _poll(lambda: most > 0, seen, 120)
                delays = []
                for n in range(_SAMPLES):
                    await call(_OTHER_ORG)
                    # Up to the time the hanging ones' 10 s attempts would take, 16 at once.
                    await _poll(lambda n=n: len(answering.delivered()) > n, seen, 900)
                    delays.append(_after_detection(answering.delivered()[n]))
                    await _poll(lambda: False, seen, _SPACING)
    received = [r for hook in [*hanging, answering] for r in hook.received]
    return {
        "hanging_thresholds": HANGING,
        "hanging_attempts": len(received) - len(delays),
        "most_hanging_at_once": most,
        "most_hanging_per_host": max(hook.most_hanging for hook in hanging),
        "delays_s": delays,
        "verified": all(r.verified for r in received),
    }


# Organizations with no usage that hold the thresholds the bench's own cannot: an
# organization has at most MAX_PER_ORG.
_SPARE = "bench-watch-"


def _holders(bench_orgs: list[str]) -> list[str]:
    """The organizations the COUNT thresholds are spread over: the bench's, then spares."""
    needed = -(-COUNT // MAX_PER_ORG)
    return bench_orgs + [f"{_SPARE}{n}" for n in range(needed - len(bench_orgs))]


async def _clear_thresholds(database_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(database_url, **connect_kwargs()) as conn:
        for table in _THRESHOLD_TABLES:
            await execute(conn, compile_statement(delete(table)))
        await execute(
            conn,
            compile_statement(
                delete(organizations).where(organizations.c.org_id.like(_SPARE + "%"))
            ),
        )


async def run(database_url: str, orgs: list[str], keys: dict, now: datetime, requests: int) -> dict:
    """Everything above; the thresholds are deleted at the end (the bench's data stays as
    generated)."""
    with receiver() as hook:
        hook.secrets = await create(database_url, _holders([*orgs, load.INGEST_ORG]), hook.url)
        found = {"pass": await full_pass(database_url)}
        found["receiver_verified"] = all(r.verified for r in hook.received)
        found["cost"] = await cost(database_url, keys, orgs[0], now, requests)
    await _clear_thresholds(database_url)
    found["fairness"] = await fairness(database_url, keys["ingest"])
    await _clear_thresholds(database_url)
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
    report_fairness(found["fairness"])


def report_fairness(found: dict) -> None:
    delays = found["delays_s"]
    print(
        f"  fairness: another organization's webhooks while one's {found['hanging_thresholds']:,} "
        f"receivers hang ({found['hanging_attempts']:,} attempts held, at most "
        f"{found['most_hanging_at_once']} at once, {found['most_hanging_per_host']} per "
        f"host): {len(delays)} delivered "
        f"{statistics.median(delays):.2f} s after detection at the median, "
        f"{max(delays):.2f} s at most; every signature verified: {found['verified']}"
    )


async def _fairness_alone() -> dict:
    folder = Path(tempfile.mkdtemp(prefix="usage-bench-fairness-"))
    cluster = EmbeddedPostgres(folder, durable=False)
    cluster.start()
    try:
        migrations.upgrade(cluster.url)
        async with await psycopg.AsyncConnection.connect(cluster.url, **connect_kwargs()) as conn:
            ingest_key = (await create_key(conn, Scope.INGEST, None)).key
        return await fairness(cluster.url, ingest_key)
    finally:
        cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    print(f"Bounds: {DEFAULT_BOUNDS}", file=sys.stderr)
    report_fairness(asyncio.run(_fairness_alone()))
