"""`make bench CITUS=1`: a three-node Citus cluster on this machine (a coordinator and two
workers, kept in .data/bench/citus), holding the single-node bench's data, copied row for row,
and the single-node and Citus figures side by side."""

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql

from api.dev.citus_cluster import CitusCluster, installed
from api.storage import migrations
from api.storage.db import connect_kwargs
from api.storage.schema import api_keys, metadata
from bench.data import BenchOrg

PRESETS = ["24h", "7d", "30d"]
# Every table the events fill (keys are each run's own), parents before their dependants.
_TABLES = [table.name for table in metadata.sorted_tables if table is not api_keys]


@contextmanager
def cluster(
    folder: Path, source_url: str, bench_orgs: list[BenchOrg]
) -> Iterator[tuple[str, dict[str, Path]]]:
    """The cluster, started and migrated (every table distributed), with the bench orgs' rows
    of ``source_url`` copied in unless already there: its URL and its nodes' data
    directories by name. Stopped on exit."""
    if not installed():
        raise SystemExit("make bench CITUS=1: this PostgreSQL has no Citus extension")
    citus = CitusCluster(folder, durable=True, first_port=5701)
    citus.start()
    try:
        migrations.upgrade(citus.url)
        slugs = [org.slug for org in bench_orgs]
        if _llm_calls(citus.url, slugs) != _llm_calls(source_url, slugs):
            _copy(source_url, citus.url, slugs)
        else:
            print("Reusing the bench data on Citus.", file=sys.stderr)
        nodes = {"coordinator": citus.coordinator.data}
        nodes |= {f"worker{n}": worker.data for n, worker in enumerate(citus.workers, 1)}
        yield citus.url, nodes
    finally:
        citus.stop()


def _llm_calls(url: str, slugs: list[str]) -> int:
    with psycopg.connect(url, **connect_kwargs()) as conn:
        found = conn.execute("SELECT count(*) FROM llm_calls WHERE org_id = ANY(%s)", [slugs])
        return found.fetchone()[0]


def _copy(source_url: str, target_url: str, slugs: list[str]) -> None:
    """Every table's rows of the bench orgs, in binary COPY, table by table (the target's
    rows of those orgs deleted first): the Citus coordinator routes each row to its shard."""
    started = time.monotonic()
    with (
        psycopg.connect(source_url, **connect_kwargs()) as source,
        psycopg.connect(target_url, **connect_kwargs()) as target,
    ):
        for table in reversed(_TABLES):
            target.execute(
                sql.SQL("DELETE FROM {} WHERE org_id = ANY(%s)").format(sql.Identifier(table)),
                [slugs],
            )
        for table in _TABLES:
            name = sql.Identifier(table)
            rows = sql.SQL("SELECT * FROM {} WHERE org_id = ANY({})").format(
                name, sql.Literal(slugs)
            )
            copied, table_started = 0, time.monotonic()
            with (
                source.cursor().copy(
                    sql.SQL("COPY ({}) TO STDOUT (FORMAT binary)").format(rows)
                ) as out,
                target.cursor().copy(
                    sql.SQL("COPY {} FROM STDIN (FORMAT binary)").format(name)
                ) as into,
            ):
                for chunk in out:
                    into.write(chunk)
                    copied += len(chunk)
                    print(
                        f"\r  copying {table}: {copied / 2**20:,.0f} MiB"
                        f" in {time.monotonic() - table_started:,.0f} s   ",
                        end="",
                        file=sys.stderr,
                        flush=True,
                    )
        target.execute("VACUUM ANALYZE")
    print(f"\nCopied to Citus in {time.monotonic() - started:,.0f} s", file=sys.stderr)


def side_by_side(single: dict, citus: dict) -> None:
    """The reads (p50/p95 per org, section and preset; cross-org), ingest and page loads of
    both runs, one line each, and Citus' over single-node p95."""
    print("\n== Single node and Citus (coordinator + 2 workers, same machine) ==")
    print(f"{'read':<30}{'single p50/p95 ms':>20}{'Citus p50/p95 ms':>20}{'p95 ratio':>11}")
    reads = [
        (f"{org} {section} {preset}", single["reads"][org][section][preset], by_section)
        for org in single["reads"]
        for section in single["reads"][org]
        for preset, by_section in [
            (p, citus["reads"][org][section][p]) for p in single["reads"][org][section]
        ]
    ]
    reads += [
        (f"all orgs {section} {preset}", single["cross_org"][section][preset], found)
        for section in single["cross_org"]
        for preset, found in citus["cross_org"][section].items()
    ]
    for label, one, other in reads:
        print(
            f"{label:<30}{one['p50_ms']:>11.1f} /{one['p95_ms']:>6.1f}"
            f"{other['p50_ms']:>13.1f} /{other['p95_ms']:>6.1f}"
            f"{other['p95_ms'] / one['p95_ms']:>10.2f}x"
        )
    one, other = single["ingest"], citus["ingest"]
    rate, other_rate = one["events_per_second"], other["events_per_second"]
    print(
        f"{'ingest events/s, batch p99 ms':<30}{rate:>11,.0f} /{one['p99_ms']:>6.0f}"
        f"{other_rate:>13,.0f} /{other['p99_ms']:>6.0f}{other_rate / rate:>10.2f}x"
    )
    one, other = single["page_loads"]["per_second"], citus["page_loads"]["per_second"]
    print(f"{'page loads/s':<30}{one:>19.1f}{other:>20.1f}{other / one:>10.2f}x")
    print("\nPostgreSQL CPU per node (the capacity model's per-shard costs):")
    for label, one, other in [
        ("ms per 1,000 events ingested", single["ingest"], citus["ingest"]),
        *(
            (f"ms per read, {org}", single["read_cpu_ms"][org], citus["read_cpu_ms"][org])
            for org in single["read_cpu_ms"]
        ),
    ]:
        if "cpu_ms_per_1000_events" in one:
            one, other = one["cpu_ms_per_1000_events"], other["cpu_ms_per_1000_events"]
        cells = ", ".join(f"{node} {ms:,.1f}" for node, ms in other.items())
        single_cell = ", ".join(f"{node} {ms:,.1f}" for node, ms in one.items())
        print(f"  {label:<30} single: {single_cell}; Citus: {cells}")
