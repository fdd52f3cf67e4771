"""`make soak`: the service under steady traffic for MINUTES, minute by minute.

A throwaway durable PostgreSQL (fsync on, as in production) and the real server on
loopback. First a day of history, so that every preset reads full windows from the first
minute; then, for the whole run, ingesters post batches at a fixed rate (events of every type
across many orgs, times within the last half minute, 2% up to a day late, 2% sent again)
while readers ask for every section at a fixed rate. Every minute it records read p50/p95
per section, the ingest rate and batch p99, the rollup tables' size beside the size of
their live rows (the same rows copied into fresh tables with the same indexes), their dead
tuples and share of HOT updates, the raw tables' and receipts' sizes, and the write path's
queue (events waiting to be folded, at most, and the oldest's wait at p99). At the end every
section, per org and for all orgs, is checked against the oracle over exactly the
acknowledged events. Writes .data/soak/results.json and .data/soak/soak.png.
"""

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import msgspec
import psycopg
from psycopg import sql

from api.progress import Progress
from api.storage import partitions, reservations, rollups
from bench import queue
from bench.stats import percentiles
from bench.traffic import PRESETS, SECTIONS, Service, throwaway_service
from testkit.factories import BATCH
from testkit.traffic import Events, verify

OUT = Path(__file__).resolve().parent.parent / ".data" / "soak"
HISTORY = timedelta(days=1)
HISTORY_BATCH = 1000
ROLLUP_TABLES = [
    *(table.name for family in rollups.ALL for table in family.tables.values()),
    *(table.name for reserved in reservations.ALL for table in reserved.change_rollups),
    *(reserved.held.name for reserved in reservations.ALL),
]
SEGMENT_TABLES = [reserved.segments.name for reserved in reservations.ALL]
RAW_TABLES = [name for name in partitions.TABLES if name != "event_receipts"]
# Read p95 may grow this much from the first minute to the last; rollups may take this many
# times the size of their live rows.
P95_GROWTH, ROLLUP_BLOAT = 1.3, 2.0


def _steady(rng: random.Random) -> datetime:
    """Now, less the half minute a collector may take; 2% of events up to a day late."""
    late = rng.uniform(0, 86_400) if rng.random() < 0.02 else rng.uniform(0, 30)
    return datetime.now(UTC) - timedelta(seconds=late)


class Run:
    """What the load saw, by minute of the run."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.reads: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        self.batches: dict[int, list[float]] = defaultdict(list)
        self.sent: dict[int, int] = defaultdict(int)
        self.accepted: dict[int, int] = defaultdict(int)
        # The bodies of the batches acknowledged, as sent: bytes, which Python's garbage
        # collector does not track (a million event dicts would make its pauses, inside the
        # timed requests, grow with the run).
        self.acknowledged: list[bytes] = []
        self.errors: list[str] = []

    def minute(self) -> int:
        return int((time.monotonic() - self.started) // 60)


async def _paced(interval: float, deadline: float):
    """Ticks every ``interval`` seconds until ``deadline``, on a fixed schedule: a tick that
    comes late is followed at once by the next one due, so the rate holds on average."""
    due = time.monotonic()
    while due < deadline:
        yield
        due += interval
        await asyncio.sleep(max(0.0, due - time.monotonic()))


async def _timed(
    run: Run, what: str, request: Awaitable[httpx.Response]
) -> tuple[float, httpx.Response] | None:
    """The request's milliseconds and its answer, or None once a failure (no answer, or one
    other than 200) is recorded as an error."""
    started = time.perf_counter()
    try:
        response = await request
    except httpx.HTTPError as error:
        run.errors.append(f"{what}: {type(error).__name__}")
        return None
    if response.status_code != 200:
        run.errors.append(f"{what}: {response.status_code} {response.text[:200]}")
        return None
    return (time.perf_counter() - started) * 1000, response


async def _ingester(client: httpx.AsyncClient, events: Events, run: Run, args, deadline: float):
    recent: list[dict] = []
    interval = args.ingesters * args.batch / args.rate
    async for _ in _paced(interval, deadline):
        again = events.rng.sample(recent, min(len(recent), args.batch // 50))
        fresh = [events.next() for _ in range(args.batch - len(again))]
        body = msgspec.json.encode(fresh + again)
        minute = run.minute()
        post = client.post("/events", content=body, headers={"Content-Type": BATCH})
        if (answered := await _timed(run, "ingest", post)) is None:
            continue
        milliseconds, response = answered
        run.batches[minute].append(milliseconds)
        run.sent[minute] += len(fresh) + len(again)
        run.accepted[minute] += response.json()["accepted"]
        run.acknowledged.append(body)
        recent = (recent + fresh)[-2000:]


async def _reader(client: httpx.AsyncClient, n: int, orgs: list[str], run: Run, args, deadline):
    """Every section in turn, for a random org and preset."""
    rng, turn = random.Random(n), n
    async for _ in _paced(args.readers / args.reads, deadline):
        section, turn = SECTIONS[turn % len(SECTIONS)], turn + 1
        minute = run.minute()
        get = client.get(
            f"/orgs/{rng.choice(orgs)}/usage/{section}", params={"range": rng.choice(PRESETS)}
        )
        if (answered := await _timed(run, f"read {section}", get)) is not None:
            run.reads[minute][section].append(answered[0])


def _compact_size(conn: psycopg.Connection, table: str) -> int:
    """The size ``table``'s live rows take written afresh: copied into a table with the same
    indexes, compacted (VACUUM FULL rewrites the heap and builds each index sorted)."""
    conn.execute(
        sql.SQL("CREATE TEMP TABLE soak_copy (LIKE {} INCLUDING INDEXES)").format(
            sql.Identifier(table)
        )
    )
    conn.execute(sql.SQL("INSERT INTO soak_copy SELECT * FROM {}").format(sql.Identifier(table)))
    conn.execute("VACUUM FULL soak_copy")
    size = conn.execute("SELECT pg_total_relation_size('soak_copy')").fetchone()[0]
    conn.execute("DROP TABLE soak_copy")
    return size


def _tables(url: str) -> dict[str, int]:
    """Sizes and row statistics of the rollups, and the sizes of the other growing tables."""
    with psycopg.connect(url, autocommit=True) as conn:
        (heap, indexes, live, dead, updates, hot) = conn.execute(
            "SELECT sum(pg_relation_size(relid))::bigint, sum(pg_indexes_size(relid))::bigint,"
            " sum(n_live_tup)::bigint, sum(n_dead_tup)::bigint, sum(n_tup_upd)::bigint,"
            " sum(n_tup_hot_upd)::bigint"
            " FROM pg_stat_user_tables WHERE relname = ANY(%s)",
            [ROLLUP_TABLES],
        ).fetchone()

        def total(names: list[str]) -> int:
            return conn.execute(
                "SELECT coalesce(sum(pg_total_relation_size(relid)), 0)::bigint"
                " FROM unnest(%s::text[]::regclass[]) AS tables(root), pg_partition_tree(root)",
                [names],
            ).fetchone()[0]

        # Which tables autovacuum has vacuumed or analyzed so far: their work competes with
        # the load, so a slow minute can be told apart from a drift.
        maintained = conn.execute(
            "SELECT relname, autovacuum_count + autoanalyze_count FROM pg_stat_user_tables"
            " WHERE autovacuum_count + autoanalyze_count > 0"
        ).fetchall()
        return {
            "autovacuum_runs": dict(maintained),
            "rollup_bytes": int(heap + indexes),
            "rollup_index_bytes": int(indexes),
            "rollup_live_bytes": sum(_compact_size(conn, name) for name in ROLLUP_TABLES),
            "rollup_live_tuples": int(live),
            "rollup_dead_tuples": int(dead),
            "rollup_updates": int(updates),
            "rollup_hot_updates": int(hot),
            "segments_bytes": total(SEGMENT_TABLES),
            "raw_bytes": total(RAW_TABLES),
            "receipts_bytes": total(["event_receipts"]),
        }


async def _history(url: str, key: str, orgs: list[str], args) -> list[bytes]:
    """A day of events before the run, sent as fast as the server takes them: enough that
    most of an org's keys have a row in most hours, as in a service that has been running
    for a while (the soak then mostly updates rows rather than adding them)."""
    now, count = datetime.now(UTC), args.history
    events = Events(1_000_000, orgs, lambda rng: now - rng.uniform(0, 1) * HISTORY, args.identities)
    batches = [
        msgspec.json.encode([events.next() for _ in range(HISTORY_BATCH)])
        for _ in range(count // HISTORY_BATCH)
    ]
    progress, sent = Progress("history", count), 0
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=120
    ) as client:

        async def post(batch: bytes) -> None:
            nonlocal sent
            response = await client.post("/events", content=batch, headers={"Content-Type": BATCH})
            response.raise_for_status()
            sent += HISTORY_BATCH
            progress.update(sent)

        for start in range(0, len(batches), 4):
            await asyncio.gather(*(post(batch) for batch in batches[start : start + 4]))
    progress.finish(sent)
    return batches


def _minute_row(run: Run, minute: int, sample: dict, before: dict) -> dict:
    batches = run.batches[minute]
    updates = sample["rollup_updates"] - before["rollup_updates"]
    runs, earlier = sample["autovacuum_runs"], before["autovacuum_runs"]
    hot = sample["rollup_hot_updates"] - before["rollup_hot_updates"]
    return {
        "minute": minute + 1,
        "events_per_second": run.sent[minute] / 60,
        "accepted_per_second": run.accepted[minute] / 60,
        "batches": len(batches),
        "batch_p50_ms": statistics.median(batches) if batches else None,
        "batch_p99_ms": percentiles(batches)["p99_ms"] if len(batches) > 1 else None,
        "reads": {
            section: {key: round(value, 1) for key, value in percentiles(samples).items()}
            for section, samples in sorted(run.reads[minute].items())
            if len(samples) > 1
        },
        "rollup_bloat": sample["rollup_bytes"] / max(sample["rollup_live_bytes"], 1),
        "hot_update_share": hot / updates if updates else None,
        "autovacuumed": sorted(t for t, n in runs.items() if n > earlier.get(t, 0)),
        **{key: value for key, value in sample.items() if key.endswith(("_bytes", "_tuples"))},
        "measured_in_s": sample["measured_in_s"],
    }


def _show(row: dict, minutes: int) -> None:
    reads = " ".join(f"{s} {f['p95_ms']:.0f}" for s, f in row["reads"].items())
    mb = 1 / 2**20
    print(
        f"minute {row['minute']:>3}/{minutes}: {row['events_per_second']:,.0f} events/s, "
        f"batch p99 {row['batch_p99_ms'] or 0:.0f} ms, read p95 ms {reads}; rollups "
        f"{row['rollup_bytes'] * mb:.1f} MB ({row['rollup_bloat']:.2f}x live), "
        f"{row['rollup_dead_tuples']:,} dead tuples, "
        f"{100 * (row['hot_update_share'] or 0):.0f}% HOT updates; "
        f"queue at most {row['queue']['max_rows']:,} events, the oldest "
        f"{row['queue']['oldest_p99_s']:.2f} s at p99; "
        f"autovacuum: {', '.join(row['autovacuumed']) or 'none'}",
        file=sys.stderr,
        flush=True,
    )


async def _soak(service: Service, orgs: list[str], args) -> tuple[Run, list]:
    before = await asyncio.to_thread(_tables, service.database_url)
    run, rows = Run(), []
    deadline = run.started + 60 * args.minutes

    async def sample_every_minute(waiting: list) -> None:
        nonlocal before
        seen = 0
        for minute in range(args.minutes):
            await asyncio.sleep(max(0.0, run.started + 60 * (minute + 1) - time.monotonic()))
            minute_queue, seen = queue.summary(waiting[seen:]), len(waiting)
            measuring = time.perf_counter()
            sample = await asyncio.to_thread(_tables, service.database_url)
            sample["measured_in_s"] = round(time.perf_counter() - measuring, 2)
            rows.append({**_minute_row(run, minute, sample, before), "queue": minute_queue})
            _show(rows[-1], args.minutes)
            before = sample

    def client(key: str) -> httpx.AsyncClient:
        limits = httpx.Limits(max_connections=args.ingesters + args.readers)
        return httpx.AsyncClient(
            base_url=service.url,
            headers={"Authorization": f"Bearer {key}"},
            timeout=60,
            limits=limits,
        )

    async with (
        client(service.keys["ingest"]) as ingest,
        client(service.keys["admin"]) as read,
        queue.watched(service.database_url) as waiting,
    ):
        await asyncio.gather(
            *(
                _ingester(ingest, Events(n, orgs, _steady, args.identities), run, args, deadline)
                for n in range(args.ingesters)
            ),
            *(_reader(read, n, orgs, run, args, deadline) for n in range(args.readers)),
            sample_every_minute(waiting),
        )
    return run, rows


def _targets(rows: list[dict], errors: list[str], wrong: str | None, args) -> dict[str, dict]:
    first, last = rows[0]["reads"], rows[-1]["reads"]
    growth = {
        s: last[s]["p95_ms"] / first[s]["p95_ms"] for s in SECTIONS if s in first and s in last
    }
    rate = statistics.mean(row["events_per_second"] for row in rows)
    worst_bloat = max(row["rollup_bloat"] for row in rows)
    return {
        "read p95 last minute / first": {
            "value": {s: round(g, 2) for s, g in growth.items()},
            "target": P95_GROWTH,
            "met": len(growth) == len(SECTIONS) and max(growth.values()) <= P95_GROWTH,
        },
        "rollup size / live rows' size (worst minute)": {
            "value": round(worst_bloat, 2),
            "target": ROLLUP_BLOAT,
            "met": worst_bloat <= ROLLUP_BLOAT,
        },
        "ingest events/s sent and acknowledged (mean)": {
            "value": round(rate),
            "target": args.rate,
            "met": rate >= 0.98 * args.rate,
        },
        "errors": {"value": len(errors), "target": 0, "met": not errors},
        "wrong figures": {"value": wrong or 0, "target": 0, "met": wrong is None},
    }


def _plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    minutes = [row["minute"] for row in rows]
    figure, (latency, size) = pyplot.subplots(2, 1, figsize=(9, 7), sharex=True)
    for section in SECTIONS:
        latency.plot(
            minutes, [row["reads"].get(section, {}).get("p95_ms") for row in rows], label=section
        )
    latency.plot(minutes, [row["batch_p99_ms"] for row in rows], "k--", label="ingest batch p99")
    latency.set_ylabel("ms")
    latency.set_title("Read p95 per section, ingest batch p99")
    latency.legend(fontsize="small")
    mb = 1 / 2**20
    size.plot(minutes, [row["rollup_bytes"] * mb for row in rows], label="rollup tables")
    size.plot(minutes, [row["rollup_live_bytes"] * mb for row in rows], label="their live rows")
    size.plot(minutes, [row["raw_bytes"] * mb for row in rows], label="raw events")
    size.plot(minutes, [row["receipts_bytes"] * mb for row in rows], label="receipts")
    size.set_ylabel("MB (tables and indexes)")
    size.set_xlabel("minute")
    size.set_title("Table sizes")
    size.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(prog="make soak", description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=int, default=10)
    # What these 2-core machines sustain with headroom beside the readers and the load
    # generator itself; at 2,000 events/s they are saturated and read latency swings from
    # minute to minute with whatever else runs (docs/design.md, Guarantees).
    parser.add_argument("--rate", type=float, default=1000, help="events/s")
    parser.add_argument("--orgs", type=int, default=50)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--ingesters", type=int, default=2)
    parser.add_argument("--reads", type=float, default=20, help="requests/s")
    parser.add_argument("--readers", type=int, default=4)
    parser.add_argument("--identities", type=int, default=10, help="agent and user ids per org")
    parser.add_argument("--history", type=int, default=250_000, help="events over the day before")
    args = parser.parse_args()
    orgs = [f"org-{n:02d}" for n in range(args.orgs)]
    OUT.mkdir(parents=True, exist_ok=True)
    wrong, checked = None, 0
    with throwaway_service("soak") as service:
        history = asyncio.run(_history(service.url, service.keys["ingest"], orgs, args))
        # A day's autovacuum, at once: the run starts from a settled database.
        with psycopg.connect(service.database_url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
        print(
            f"Soaking for {args.minutes} min: {args.rate:,.0f} events/s in batches of "
            f"{args.batch} across {args.orgs} orgs, {args.reads:.0f} reads/s ...",
            file=sys.stderr,
        )
        soak_start = datetime.now(UTC)
        run, rows = asyncio.run(_soak(service, orgs, args))
        print("Checking every figure against the oracle ...", file=sys.stderr)
        end = datetime.now(UTC)
        acknowledged = [
            event for body in history + run.acknowledged for event in msgspec.json.decode(body)
        ]
        try:
            for window in (
                (soak_start - HISTORY - timedelta(hours=1), end, "1h"),
                (soak_start - timedelta(minutes=5), end, "5m"),
            ):
                checked += verify(service.url, service.keys["admin"], acknowledged, orgs, window)
        except AssertionError as error:
            wrong = str(error)[:2000]
    targets = _targets(rows, run.errors, wrong, args)
    results = {
        "config": vars(args),
        "minutes": rows,
        "errors": run.errors[:100],
        "answers_checked": checked,
        "targets": targets,
    }
    (OUT / "results.json").write_text(json.dumps(results, indent=2))
    _plot(rows, OUT / "soak.png")
    print(f"\n{checked} answers equal the oracle" if wrong is None else f"\nWRONG: {wrong}")
    for name, target in targets.items():
        verdict = "met" if target["met"] else "NOT MET"
        print(f"{name:<45} {target['value']}  (target {target['target']})  {verdict}")
    print(f"results: {OUT / 'results.json'}, plot: {OUT / 'soak.png'}")
    if run.errors or wrong:
        sys.exit(1)


if __name__ == "__main__":
    main()
