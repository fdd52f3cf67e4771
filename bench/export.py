"""Export to object storage at the bench's scale (issue 36), into SeaweedFS on this machine
(testkit.object_store): a full backfill of everything the bench's database stores by
`usage-api export --once`, timed, its peak memory taken, and what it wrote read back with
pyarrow and counted against the raw tables; then the exporter's cost: the same ingest and
reads against a server without an exporter and one whose exporter passes every INTERVAL
seconds, taking turns, with the export lag sampled meanwhile.

The database is left exporting nowhere, as it was found: with a destination registered,
every batch the rest of the bench ingests would be queued for an export nobody makes."""

import asyncio
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path

import httpx
import psycopg
import pyarrow.parquet as pq
from psycopg.rows import dict_row
from pyarrow import fs
from sqlalchemy import delete, func, insert, select

from api.export import hourly
from api.export.datasets import EVENT_DATASETS
from api.storage.db import compile_statement, connect_kwargs, execute_sync
from api.storage.schema import export_state, metadata
from bench import load
from testkit.object_store import S3Endpoint, create_bucket, seaweedfs
from testkit.server import USAGE_API, live_server

BUCKET = "usage-bench"
INTERVAL = 10  # seconds between the exporter's passes beside ingest (USAGE_EXPORT_INTERVAL)
# Batches of 1,000 events for ingest's rate: at 30,000 events/s, as long as an interval, so
# that a pass falls within it.
INGEST_BATCHES = 300
_EXPORT_TABLES = [t for t in reversed(metadata.sorted_tables) if t.name.startswith("export_")]
_RAW_COUNTS = {
    dataset.name: compile_statement(select(func.count()).select_from(dataset.raw))
    for dataset in EVENT_DATASETS
}
# Seconds the oldest event stored and not yet exported has waited (None: none waits).
_LAG = "SELECT extract(epoch FROM clock_timestamp() - min(queued_at))::float8 FROM export_pending"
_SAMPLE_SECONDS = 0.5


async def run(
    database_url: str,
    big: str,
    keys: dict[str, str],
    now: datetime,
    sections: list[str],
    presets: list[str],
    requests: int,
) -> dict:
    """The backfill, then the exporter's cost beside ingest; ``keys``: a read key per
    organization and the ingest key ("ingest"); the reads are ``big``'s."""
    folder = Path(tempfile.mkdtemp(prefix="usage-bench-s3-"))
    try:
        with seaweedfs(folder) as endpoint:
            create_bucket(endpoint, BUCKET)
            # A destination of its own each run: a new destination gets a backfill of every
            # day stored (api.storage.exports.register), even after a run that died midway.
            prefix = f"bench-{datetime.now(UTC):%Y%m%dT%H%M%S}"
            environment = {
                **endpoint.environ,
                "USAGE_EXPORT_URL": f"s3://{BUCKET}/{prefix}",
                "USAGE_EXPORT_ENDPOINT": endpoint.url,
            }
            done = backfill(database_url, environment)
            done |= read_back(endpoint, f"{BUCKET}/{prefix}", database_url)
            done["events_per_second"] = done["events"] / done["seconds"]
            beside = await cost(
                database_url, environment, keys, big, now, sections, presets, requests
            )
    finally:
        _forget_destination(database_url)
        shutil.rmtree(folder, ignore_errors=True)
    return {"backfill": done, "cost": beside}


def backfill(database_url: str, environment: dict[str, str]) -> dict:
    """`usage-api export --once` to a new destination, which writes everything stored; its
    progress lines pass through. Its peak RSS is the kernel's figure for it alone (wait4),
    where RUSAGE_CHILDREN would take the largest of every child the bench has waited for."""
    print("\n  export: a backfill of everything stored (usage-api export --once)", file=sys.stderr)
    started = time.perf_counter()
    process = subprocess.Popen(
        [USAGE_API, "export", "--once"],
        env={**os.environ, "DATABASE_URL": database_url, **environment},
    )
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"usage-api export --once failed ({process.returncode})")
    return {"seconds": seconds, "peak_rss_mb": usage.ru_maxrss / 1024}  # ru_maxrss: KiB


def read_back(endpoint: S3Endpoint, root: str, database_url: str) -> dict:
    """Each dataset's Parquet files in the bucket under ``root``, their rows counted from
    their footers by pyarrow, beside the raw tables' rows."""
    s3 = endpoint.filesystem()
    with psycopg.connect(database_url, **connect_kwargs()) as conn:
        raw = {name: execute_sync(conn, count).fetchone()[0] for name, count in _RAW_COUNTS.items()}
    datasets = {}
    largest = (0, "")
    for name in [*raw, hourly.DATASET]:
        selector = fs.FileSelector(f"{root}/{name}", recursive=True, allow_not_found=True)
        files = [f for f in s3.get_file_info(selector) if f.path.endswith(".parquet")]
        rows = [pq.read_metadata(f.path, filesystem=s3).num_rows for f in files]
        datasets[name] = {
            "rows": sum(rows),
            "raw_rows": raw.get(name),
            "files": len(files),
            "bytes": sum(f.size for f in files),
        }
        largest = max(largest, (max(rows, default=0), name))
    events = sum(datasets[name]["rows"] for name in raw)
    return {
        "events": events,
        "files": sum(d["files"] for d in datasets.values()),
        "bytes": sum(d["bytes"] for d in datasets.values()),
        "largest_file_rows": largest[0],
        "largest_file_dataset": largest[1],
        "complete": all(datasets[name]["rows"] == rows for name, rows in raw.items()),
        "datasets": datasets,
    }


async def cost(
    database_url: str,
    environment: dict[str, str],
    keys: dict[str, str],
    big: str,
    now: datetime,
    sections: list[str],
    presets: list[str],
    requests: int,
    rounds: int = 2,
) -> dict:
    """Reads of ``big`` beside ingest at 10,000 events/s, then ingest as fast as it goes,
    against a server without an exporter and one exporting (``environment``) every INTERVAL
    seconds, taking turns ``rounds`` times; each setting's best round (the highest rates,
    each cell's lowest p95), so that both get the same chance against the machine's noise.
    The lag is the exporting round's that came closest to its bound."""
    registered = _registration(database_url)
    runs: dict[str, list[dict]] = {"without": [], "with": []}
    for turn in range(rounds):
        for label in runs:
            exporting = label == "with"
            # Without: a database that exports nowhere, where ingest queues nothing for
            # export (api.storage.export_queue). With: the backfill's destination again,
            # caught up, so that the passes export what arrives and nothing older.
            _set_registration(database_url, registered if exporting else None)
            load.clear_ingest_orgs(database_url)
            server = {"USAGE_RATE_LIMIT": "0"}
            if exporting:
                server |= {**environment, "USAGE_EXPORT_INTERVAL": str(INTERVAL)}
            with live_server(database_url, **server) as base_url:
                runs[label].append(
                    await _run(base_url, database_url, keys, big, now, sections, presets, requests)
                )
            print(f"  the exporter's cost: round {turn + 1}, {label} it", file=sys.stderr)
    found = {label: _best(done) for label, done in runs.items()}
    without, with_it = found["without"], found["with"]
    slower = {
        cell: with_it["reads"][cell]["p95_ms"] / without["reads"][cell]["p95_ms"]
        for cell in with_it["reads"]
    }
    slowest = max(slower, key=slower.__getitem__)
    closest = max(runs["with"], key=lambda r: r["lag_s"] - r["longest_pass_s"])
    return {
        **found,
        "ingest_ratio": with_it["ingest_events_per_second"] / without["ingest_events_per_second"],
        "read_p95_ratio": slower[slowest],
        "slowest_read": slowest,
        "lag": {
            "max_s": closest["lag_s"],
            "longest_pass_s": closest["longest_pass_s"],
            "bound_s": INTERVAL + closest["longest_pass_s"],
            "passes_s": closest["passes_s"],
            "passes_timed": sum(len(r["passes_s"]) for r in runs["with"]),
            "failures": sum(r["failures"] for r in runs["with"]),
        },
        "interval_s": INTERVAL,
        "rounds": rounds,
    }


async def _run(
    base_url: str,
    database_url: str,
    keys: dict[str, str],
    big: str,
    now: datetime,
    sections: list[str],
    presets: list[str],
    requests: int,
) -> dict:
    async with _watched(database_url, base_url) as watched:
        beside = await load.reads_beside_ingest(
            base_url, big, keys[big], keys["ingest"], now, sections, presets, requests
        )
        ingest = await load.ingest(base_url, keys["ingest"], batches=INGEST_BATCHES)
    passes = watched.pass_seconds()
    return {
        "ingest_events_per_second": ingest["events_per_second"],
        "acknowledged_beside_reads": beside["ingest_events_per_second"],
        "reads": {
            f"{section} {preset}": figures
            for section, by_preset in beside["reads"].items()
            for preset, figures in by_preset.items()
        },
        "lag_s": max(watched.lags, default=0.0),
        "passes_s": passes,
        # None measured (fewer than two passes): the bound is the interval alone.
        "longest_pass_s": max(passes, default=0.0),
        "failures": watched.failures,
    }


def _best(done: list[dict]) -> dict:
    return {
        "ingest_events_per_second": max(r["ingest_events_per_second"] for r in done),
        "acknowledged_beside_reads": max(r["acknowledged_beside_reads"] for r in done),
        "reads": {
            cell: min((r["reads"][cell] for r in done), key=lambda f: f["p95_ms"])
            for cell in done[0]["reads"]
        },
    }


@dataclass(slots=True)
class _Watched:
    lags: list[float] = field(default_factory=list)  # seconds, a sample each _SAMPLE_SECONDS
    passes_ended: list[float] = field(default_factory=list)  # the server's clock, each success
    failures: int = 0  # passes that failed

    def pass_seconds(self) -> list[float]:
        """Each pass's duration but the first's (begun with the server): the time from one
        success to the next, less the interval the exporter sleeps between them."""
        return [later - earlier - INTERVAL for earlier, later in pairwise(self.passes_ended)]


@asynccontextmanager
async def _watched(database_url: str, base_url: str) -> AsyncIterator[_Watched]:
    """The export lag and the server's passes, sampled for the block's duration (in a
    server without an exporter too: the samples' own cost is the same in both)."""
    watched = _Watched()
    sampling = asyncio.create_task(_sample(database_url, base_url, watched))
    try:
        yield watched
    finally:
        sampling.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampling  # raises what stopped the sampling, if anything did


async def _sample(database_url: str, base_url: str, watched: _Watched) -> None:
    """The lag from the database, where it is exact (the server's gauge is set only during
    its passes); the passes' ends and failures from the server's /metrics."""
    async with (
        await psycopg.AsyncConnection.connect(database_url, **connect_kwargs()) as conn,
        httpx.AsyncClient(base_url=base_url, timeout=60) as client,
    ):
        while True:
            (lag,) = await (await conn.execute(_LAG)).fetchone()
            watched.lags.append(lag or 0.0)
            answer = await client.get("/metrics")
            answer.raise_for_status()
            ended = _metric(answer.text, "usage_export_last_success_timestamp_seconds")
            if ended and ended not in watched.passes_ended[-1:]:
                watched.passes_ended.append(ended)
            watched.failures = int(_metric(answer.text, "usage_export_failures_total") or 0)
            await asyncio.sleep(_SAMPLE_SECONDS)


def _metric(exposition: str, name: str) -> float | None:
    found = re.search(rf"^{name} (\S+)$", exposition, re.MULTILINE)
    return float(found[1]) if found else None


def _registration(database_url: str) -> dict:
    with psycopg.connect(database_url, row_factory=dict_row, **connect_kwargs()) as conn:
        return execute_sync(conn, compile_statement(select(export_state))).fetchone()


def _set_registration(database_url: str, registered: dict | None) -> None:
    """The destination registered as ``registered`` (a row of export_state), or none."""
    with psycopg.connect(database_url, **connect_kwargs()) as conn, conn.transaction():
        execute_sync(conn, compile_statement(delete(export_state)))
        if registered is not None:
            execute_sync(conn, compile_statement(insert(export_state).values(**registered)))


def _forget_destination(database_url: str) -> None:
    """Every trace of a destination gone, as in a database never exported from."""
    with psycopg.connect(database_url, **connect_kwargs()) as conn:
        for table in _EXPORT_TABLES:
            execute_sync(conn, compile_statement(delete(table)))


def report(found: dict) -> None:
    done = found["backfill"]
    print(
        f"\nExport: a backfill of everything stored (usage-api export --once into SeaweedFS): "
        f"{done['events']:,} events in {done['seconds']:.1f} s, "
        f"{done['events_per_second']:,.0f} events/s; the exporter's peak RSS "
        f"{done['peak_rss_mb']:,.0f} MB; {done['files']:,} files, {done['bytes'] / 1e6:,.1f} MB, "
        f"the largest {done['largest_file_rows']:,} rows ({done['largest_file_dataset']})"
    )
    print(f"  {'dataset':<17}{'rows read back':>16}{'raw rows':>14}{'files':>8}{'MB':>10}")
    for name, figures in done["datasets"].items():
        raw = "" if figures["raw_rows"] is None else f"{figures['raw_rows']:,}"
        print(
            f"  {name:<17}{figures['rows']:>16,}{raw:>14}{figures['files']:>8,}"
            f"{figures['bytes'] / 1e6:>10,.1f}"
        )
    print(f"  every events dataset's rows equal to its raw table's: {done['complete']}")
    cost = found["cost"]
    without, with_it = cost["without"], cost["with"]
    print(
        f"  the exporter's cost (passes every {cost['interval_s']} s, best of {cost['rounds']} "
        f"turns each): ingest {without['ingest_events_per_second']:,.0f} -> "
        f"{with_it['ingest_events_per_second']:,.0f} events/s ({cost['ingest_ratio']:.2f}x); "
        f"10,000 events/s sent beside the reads, acknowledged at "
        f"{without['acknowledged_beside_reads']:,.0f} -> "
        f"{with_it['acknowledged_beside_reads']:,.0f}/s; reads' p95 beside them, with over without:"
    )
    for cell, figures in without["reads"].items():
        exporting = with_it["reads"][cell]["p95_ms"]
        print(
            f"    {cell:<14}{figures['p95_ms']:>8.1f} -> {exporting:>6.1f} ms "
            f"({exporting / figures['p95_ms']:.2f}x)"
        )
    lag = cost["lag"]
    print(
        f"  export lag while ingest runs: at most {lag['max_s']:.1f} s, bound "
        f"{lag['bound_s']:.1f} s (the interval and that round's longest pass, "
        f"{lag['longest_pass_s']:.1f} s); {lag['passes_timed']} passes timed, "
        f"{lag['failures']} failed"
    )
