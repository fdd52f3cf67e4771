"""`make bench`: the usage endpoints at 10 million LLM calls per org per month, over HTTP,
beside the straightforward SQL over the raw tables and DuckDB over the same rows in Parquet;
the slicing reads (zone, filters, previous period, groups) beside the plain ones; the
cross-org reads; then ingest throughput and the page-load rate; then 10,000 usage thresholds:
one pass over them all, and the watcher's cost to ingest and reads; then the export to object
storage: a backfill of everything stored, and the exporter's cost to ingest and reads and its
lag (bench.export). Prints a table; writes .data/bench/results.json.

The generated data is kept in .data/bench/postgres and reused while its org sizes match.
``--citus`` (`make bench CITUS=1`) measures the same again on a three-node Citus cluster over
the same data (bench.citus) and prints both side by side.
"""

import argparse
import asyncio
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from api.dev.embedded_postgres import EmbeddedPostgres
from api.reads.sections import SECTION_NAMES
from api.storage import migrations
from api.storage.db import connect_kwargs
from api.storage.keys import Scope, create_key
from api.storage.rebuild import rebuild
from bench import baselines as comparisons
from bench import citus, cost, cpu, export, load, queue, slicing, targets, thresholds
from bench.data import BenchOrg, generate, orgs
from testkit.server import running_server

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / ".data" / "bench"
SECTIONS = SECTION_NAMES
PRESETS = ["24h", "7d", "30d"]
_COUNT = "SELECT org_id, {count} FROM {table} WHERE org_id = ANY(%(orgs)s) GROUP BY org_id"
_BENCH_TABLES = [
    "event_receipts",
    "llm_calls",
    "workload_events",
    "volume_events",
    "thread_events",
    "message_events",
    "identities",
    "orgs",
]


_STATEMENT_STATISTICS = {
    "shared_preload_libraries": "pg_stat_statements",
    "pg_stat_statements.track": "all",
}


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__)
    parser.add_argument("--requests", type=int, default=60, help="per section and preset")
    parser.add_argument("--regenerate", action="store_true", help="drop and generate again")
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiplies the org sizes (0.01: a smoke run)"
    )
    parser.add_argument(
        "--citus",
        action="store_true",
        help="also on a three-node Citus cluster, side by side (without the raw SQL and DuckDB"
        " comparisons)",
    )
    parser.add_argument(
        "--thresholds",
        action="store_true",
        help="only the thresholds' part (bench.thresholds), printed, results.json untouched",
    )
    parser.add_argument(
        "--cost",
        action="store_true",
        help="only the cost of an event and of a request (bench.cost) and its targets, printed,"
        " results.json untouched",
    )
    parser.add_argument(
        "--export",
        action="store_true",
        help="only the export's part (bench.export) and its targets, printed, results.json"
        " untouched",
    )
    args = parser.parse_args()
    bench_orgs = orgs(args.scale)
    OUT.mkdir(parents=True, exist_ok=True)
    cluster = None
    database_url = os.environ.get("DATABASE_URL")
    if not database_url:
        # pg_stat_statements: PostgreSQL's time per 1,000 events ingested (bench.cost).
        cluster = EmbeddedPostgres(OUT / "postgres", settings=_STATEMENT_STATISTICS)
        cluster.start()
        database_url = cluster.url
    try:
        migrations.upgrade(database_url)
        now = _prepare(database_url, bench_orgs, args.regenerate)
        if args.thresholds:
            thresholds.report(
                asyncio.run(_thresholds_alone(database_url, bench_orgs, now, args.requests))
            )
            return
        if args.cost:
            nodes = {"postgres": cluster.data} if cluster else {}
            found = asyncio.run(_cost_alone(database_url, bench_orgs, now, args.requests, nodes))
            cost.report(found)
            targets.report(targets.cost_verdicts(found))
            return
        if args.export:
            found = asyncio.run(_export_alone(database_url, bench_orgs, now, args.requests))
            export.report(found)
            targets.report(targets.export_verdicts(found))
            return
        nodes = {"postgres": cluster.data} if cluster else {}
        results = asyncio.run(
            _measure(database_url, bench_orgs, now, args.requests, nodes, baselines=not args.citus)
        )
        if args.citus:
            with citus.cluster(OUT / "citus", database_url, bench_orgs) as (citus_url, nodes):
                print("\n== The same on Citus: a coordinator and two workers ==")
                results["citus"] = asyncio.run(
                    _measure(citus_url, bench_orgs, now, args.requests, nodes, baselines=False)
                )
            citus.side_by_side(results, results["citus"])
    finally:
        if cluster:
            cluster.stop()
    (OUT / "results.json").write_text(json.dumps(results, indent=2))
    print(f"\nWritten to {OUT / 'results.json'}")


def _prepare(database_url: str, bench_orgs: list[BenchOrg], regenerate: bool) -> datetime:
    """The bench orgs, generated unless already there, and derived unless already done;
    returns the generation's 'now'."""
    expected = {org.slug: org.llm_calls for org in bench_orgs}
    with psycopg.connect(database_url, **connect_kwargs()) as conn:
        slugs = {"orgs": list(expected)}
        raw = dict(
            conn.execute(_COUNT.format(count="count(*)", table="llm_calls"), slugs).fetchall()
        )
        generating = regenerate or raw != expected
        if generating:
            print("Generating the bench organizations ...", file=sys.stderr)
            started = time.monotonic()
            for table in _BENCH_TABLES:
                conn.execute(f"DELETE FROM {table} WHERE org_id LIKE 'bench-%%'")
            now = datetime.now(UTC)
            for seed, org in enumerate(bench_orgs):
                generate(conn, org, now, seed / len(bench_orgs))
            print(f"Generated in {time.monotonic() - started:,.0f} s", file=sys.stderr)
        (now,) = conn.execute(
            "SELECT max(time) FROM llm_calls WHERE org_id = ANY(%(orgs)s)", slugs
        ).fetchone()
        derived = dict(
            conn.execute(
                _COUNT.format(
                    count="sum(successful_requests + failed_requests)::bigint",
                    table="llm_totals_1d",
                ),
                slugs,
            ).fetchall()
        )
    # New raw rows leave the derived ones stale even where their counts happen to match.
    if derived == expected and not generating:
        print("Reusing the generated bench data (--regenerate to start over).")
        return now
    print("Deriving rollups and segments (usage-api rebuild) ...", file=sys.stderr)
    started = time.monotonic()

    async def derive() -> None:
        async with await psycopg.AsyncConnection.connect(database_url, **connect_kwargs()) as c:
            await rebuild(c)

    asyncio.run(derive())
    with psycopg.connect(database_url, **connect_kwargs()) as conn:
        conn.execute("VACUUM ANALYZE")
    print(f"Derived in {time.monotonic() - started:,.0f} s", file=sys.stderr)
    return now


async def _measure(
    database_url: str,
    bench_orgs: list[BenchOrg],
    now: datetime,
    requests: int,
    nodes: dict[str, Path],
    *,
    baselines: bool = True,
) -> dict:
    """``nodes``: the PostgreSQL nodes (name → data directory) whose CPU time the reads of the
    big org and the ingest cost is reported; ``baselines``: the raw SQL and DuckDB
    comparisons too (single node only)."""
    big = bench_orgs[0]
    async with await psycopg.AsyncConnection.connect(database_url, **connect_kwargs()) as conn:
        read_keys = {o.slug: (await create_key(conn, Scope.READ, o.slug)).key for o in bench_orgs}
        ingest_key = (await create_key(conn, Scope.INGEST, None)).key
        admin_key = (await create_key(conn, Scope.ADMIN, None)).key
    results: dict = {
        "generated_at": now.isoformat(),
        "orgs": {o.slug: o.llm_calls for o in bench_orgs},
    }
    with running_server(database_url, USAGE_RATE_LIMIT="0") as server:
        base_url = server.url
        reads, read_cpu = {}, {}
        for org in bench_orgs[:2]:
            with cpu.metered(nodes) as used:
                reads[org.slug] = await load.reads(
                    base_url, org.slug, read_keys[org.slug], now, SECTIONS, PRESETS, requests
                )
            sent = len(SECTIONS) * len(PRESETS) * (requests + load.WARM_UP)
            read_cpu[org.slug] = {node: 1000 * s / sent for node, s in used.items()}
        results["reads"] = reads
        results["read_cpu_ms"] = read_cpu  # per request, per node
        _print_reads(reads)
        results["slicing"] = await slicing.run(
            base_url, big.slug, read_keys[big.slug], now, SECTIONS, PRESETS, requests
        )
        slicing.report(results["slicing"])
        if baselines:
            results["baselines"] = comparisons.run(database_url, big.slug, now, PRESETS, OUT)
            _print_baselines(results["baselines"], big.slug, reads[big.slug])
        results["cross_org"] = await load.reads(
            base_url, None, admin_key, now, SECTIONS, PRESETS, requests
        )
        print_cross_org(results["cross_org"])
        results |= await cost.run(
            database_url,
            server,
            nodes,
            big.slug,
            read_keys[big.slug],
            ingest_key,
            now,
            SECTIONS,
            requests,
        )
        cost.report(results)
        results["reads_beside_ingest"] = await load.reads_beside_ingest(
            base_url, big.slug, read_keys[big.slug], ingest_key, now, SECTIONS, PRESETS, requests
        )
        await queue.drained(database_url)
        _print_beside(results["reads_beside_ingest"], reads[big.slug])
    keys = {**read_keys, "ingest": ingest_key}
    slugs = [org.slug for org in bench_orgs]
    results["thresholds"] = await thresholds.run(database_url, slugs, keys, now, requests)
    thresholds.report(results["thresholds"])
    results["export"] = await export.run(
        database_url, big.slug, keys, now, SECTIONS, PRESETS, requests
    )
    export.report(results["export"])
    results["targets"] = targets.verdicts(results)
    targets.report(results["targets"])
    return results


async def _keys(database_url: str, bench_orgs: list[BenchOrg]) -> dict[str, str]:
    """A read key per organization, and an ingest key ("ingest")."""
    async with await psycopg.AsyncConnection.connect(database_url, **connect_kwargs()) as conn:
        keys = {o.slug: (await create_key(conn, Scope.READ, o.slug)).key for o in bench_orgs}
        keys["ingest"] = (await create_key(conn, Scope.INGEST, None)).key
    return keys


async def _thresholds_alone(
    database_url: str, bench_orgs: list[BenchOrg], now: datetime, requests: int
) -> dict:
    keys = await _keys(database_url, bench_orgs)
    slugs = [org.slug for org in bench_orgs]
    return await thresholds.run(database_url, slugs, keys, now, requests)


async def _cost_alone(
    database_url: str, bench_orgs: list[BenchOrg], now: datetime, requests: int, nodes: dict
) -> dict:
    keys = await _keys(database_url, bench_orgs)
    big = bench_orgs[0].slug
    with running_server(database_url, USAGE_RATE_LIMIT="0") as server:
        return await cost.run(
            database_url, server, nodes, big, keys[big], keys["ingest"], now, SECTIONS, requests
        )


async def _export_alone(
    database_url: str, bench_orgs: list[BenchOrg], now: datetime, requests: int
) -> dict:
    keys = await _keys(database_url, bench_orgs)
    big = bench_orgs[0].slug
    return await export.run(database_url, big, keys, now, SECTIONS, PRESETS, requests)


def _print_reads(reads: dict) -> None:
    print(f"\n{'org':<11} {'section':<9}" + "".join(f"{p + ' p50/p95 ms':>22}" for p in PRESETS))
    for org, by_section in reads.items():
        for section, by_preset in by_section.items():
            cells = "".join(
                f"{by_preset[p]['p50_ms']:>13.1f} /{by_preset[p]['p95_ms']:>6.1f}" for p in PRESETS
            )
            print(f"{org:<11} {section:<9}{cells}")
    big, medium = reads.values()
    growth = max(big[s][p]["p95_ms"] / medium[s][p]["p95_ms"] for s in SECTIONS for p in PRESETS)
    print(f"largest p95 growth from 1M to 10M calls: {growth:.2f}x")


def print_cross_org(found: dict) -> None:
    print(f"\n{'all orgs':<21}" + "".join(f"{p + ' p50/p95 ms':>22}" for p in PRESETS))
    for section, by_preset in found.items():
        cells = "".join(
            f"{by_preset[p]['p50_ms']:>13.1f} /{by_preset[p]['p95_ms']:>6.1f}" for p in PRESETS
        )
        print(f"{'':<11} {section:<9}{cells}")


def _print_baselines(found: dict, org: str, reads: dict) -> None:
    print(f"\nLLM section, {org}: p50 ms (series + top consumers + by model)")
    print(f"{'preset':<8}{'this API (HTTP)':>17}{'raw SQL':>11}{'DuckDB':>10}{'vs SQL':>9}")
    for preset in PRESETS:
        api, sql, duck = (
            reads["llm"][preset]["p50_ms"],
            found["raw_sql"][preset]["p50_ms"],
            found["duckdb"][preset]["p50_ms"],
        )
        print(f"{preset:<8}{api:>17.1f}{sql:>11.1f}{duck:>10.1f}{sql / api:>8.0f}x")


def _print_beside(found: dict, idle: dict) -> None:
    print(
        f"\nReads while LLM calls arrive at {found['rate']:,.0f} events/s"
        f" ({found['ingest_events_per_second']:,.0f}/s acknowledged): p95 ms, and against idle"
    )
    print(f"{'section':<9}" + "".join(f"{p:>16}" for p in PRESETS))
    for section, by_preset in found["reads"].items():
        p95 = {preset: by_preset[preset]["p95_ms"] for preset in PRESETS}
        ratios = {preset: p95[preset] / idle[section][preset]["p95_ms"] for preset in PRESETS}
        cells = "".join(f"{p95[p]:>8.1f} {ratios[p]:>5.2f}x " for p in PRESETS)
        print(f"{section:<9}{cells}")


if __name__ == "__main__":
    main()
