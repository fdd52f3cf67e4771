"""What the usage API is measured against, on the big org's LLM section: the straightforward
SQL over the raw table, and DuckDB in-process over the same rows exported to Parquet. Both
compute what the section shows: the series, the top 10 consumers and the top 10 models."""

import sys
import time
from datetime import datetime
from pathlib import Path

import duckdb
import psycopg

from api.core.windows import resolve_window
from api.storage.db import connect_kwargs
from bench.stats import percentiles

RUNS = 7

_SUMS = """sum(input_tokens)::bigint, sum(cached_tokens)::bigint, sum(output_tokens)::bigint,
           count(*) FILTER (WHERE succeeded), count(*) FILTER (WHERE NOT succeeded)"""
_TOP = """SELECT {keys}, sum(input_tokens + output_tokens)::bigint AS total_tokens, {sums}
          FROM {source} WHERE {where} GROUP BY {keys} ORDER BY total_tokens DESC, {keys}
          LIMIT 10"""


def _queries(source: str, where: str, bucket: str) -> list[str]:
    return [
        f"SELECT {bucket} AS bucket, {_SUMS} FROM {source} WHERE {where} GROUP BY bucket",
        _TOP.format(keys="identity_kind, identity_id", sums=_SUMS, source=source, where=where),
        _TOP.format(keys="model", sums=_SUMS, source=source, where=where),
    ]


def _timed(run_all) -> dict[str, float]:
    samples = []
    for n in range(RUNS + 1):
        started = time.perf_counter()
        run_all()
        if n:  # the first run warms the caches
            samples.append((time.perf_counter() - started) * 1000)
    return percentiles(samples)


def _parquet(database_url: str, org: str, folder: Path) -> Path:
    """The org's LLM calls as Parquet, exported once per generated data set."""
    parquet = folder / f"{org}-llm_calls.parquet"
    with psycopg.connect(database_url, **connect_kwargs()) as conn:
        (count,) = conn.execute(
            "SELECT count(*) FROM llm_calls WHERE org_id = %s", [org]
        ).fetchone()
        if (
            parquet.exists()
            and duckdb.sql(f"SELECT count(*) FROM '{parquet}'").fetchall()[0][0] == count
        ):
            return parquet
        csv = folder / f"{org}-llm_calls.csv"
        print(f"  exporting {count:,} calls to Parquet ...", file=sys.stderr, flush=True)
        with (
            csv.open("wb") as out,
            conn.cursor().copy(
                "COPY (SELECT time, identity_kind, identity_id, model, input_tokens, cached_tokens,"
                " output_tokens, succeeded FROM llm_calls WHERE org_id = %s)"
                " TO STDOUT (FORMAT csv, HEADER)",
                [org],
            ) as copy,
        ):
            for chunk in copy:
                out.write(chunk)
    duckdb.sql(
        f"COPY (SELECT * FROM read_csv('{csv}', header = true)) TO '{parquet}' (FORMAT parquet)"
    )
    csv.unlink()
    return parquet


def run(database_url: str, org: str, now: datetime, presets: list[str], folder: Path) -> dict:
    found: dict = {"raw_sql": {}, "duckdb": {}}
    parquet = _parquet(database_url, org, folder)
    duck = duckdb.connect()
    duck.execute(f"CREATE VIEW calls AS SELECT * FROM '{parquet}'")
    with psycopg.connect(database_url, **connect_kwargs()) as conn:
        for preset in presets:
            window = resolve_window(now=now, range_=preset, end=now.isoformat())
            span = {"org": org, "start": window.counted_from, "end": window.as_of}
            sql = _queries(
                "llm_calls",
                "org_id = %(org)s AND time >= %(start)s AND time < %(end)s",
                "date_bin(%(width)s, time, '1970-01-01 00:00:00+00')",
            )
            found["raw_sql"][preset] = _timed(
                lambda sql=sql, span=span, width=window.width: [
                    conn.execute(q, {**span, "width": width}).fetchall() for q in sql
                ]
            )
            seconds = int(window.width.total_seconds())
            in_duck = _queries(
                "calls",
                f"time >= '{window.counted_from.isoformat()}'"
                f" AND time < '{window.as_of.isoformat()}'",
                f"time_bucket(INTERVAL {seconds} SECOND, time)",
            )
            found["duckdb"][preset] = _timed(
                lambda in_duck=in_duck: [duck.sql(q).fetchall() for q in in_duck]
            )
            print(f"  baselines {preset} done", file=sys.stderr, flush=True)
    return found
