"""The benchmark's organizations, written as raw rows by PostgreSQL itself (generate_series),
then derived with `api.rebuild`: 10 million LLM calls in minutes, not hours.

The big org has 10M calls over 30 days from 300 identities and 8 models, 200k workloads,
20k volumes, 200k threads and 2M messages; four small orgs have 1M, 100k, 10k and 1k calls
and proportionally less of the rest. Times follow a daily rhythm; every figure is
deterministic (setseed).
"""

import sys
import time
from dataclasses import dataclass
from datetime import datetime

import psycopg

DAYS = 30


@dataclass(frozen=True)
class BenchOrg:
    slug: str
    llm_calls: int

    @property
    def workloads(self) -> int:
        return self.llm_calls // 50

    @property
    def volumes(self) -> int:
        return self.llm_calls // 500

    @property
    def threads(self) -> int:
        return self.llm_calls // 50

    @property
    def messages(self) -> int:
        return self.llm_calls // 5


def orgs(scale: float = 1.0) -> list[BenchOrg]:
    """The big org first, then the one a tenth its size, then the small ones."""
    sizes = {"10m": 10_000_000, "1m": 1_000_000, "100k": 100_000, "10k": 10_000, "1k": 1_000}
    return [
        BenchOrg(f"bench-{name}", max(int(calls * scale), 100)) for name, calls in sizes.items()
    ]


CHUNK = 500_000  # rows per statement: progress, and bounded memory in PostgreSQL

# A time in the 30 days before :now, denser in working hours: a uniform day and a
# triangular-ish hour of day peaking mid-afternoon UTC.
_TIME = (
    f"%(now)s - (random() * {DAYS})::int * interval '1 day'"
    " - (24 - (6 + 16 * (random() + random()) / 2)) * interval '1 hour'"
    " - random() * interval '1 hour'"
)
# The n-th of :total events in time order, as a service receives them (and so as the table
# stores them): x = n/total runs through the 30 days with a daily rhythm, denser by day than
# by night (x + a sin(2 pi 30 x) / (2 pi 30) is increasing for a < 1).
_ORDERED_TIME = (
    f"%(now)s - interval '{DAYS} days' + interval '{DAYS} days' * least(0.9999999,"
    f" n::float8 / %(total)s + 0.6 * sin(2 * pi() * {DAYS} * n / %(total)s) / (2 * pi() * {DAYS}))"
)


def _statements() -> list[tuple[str, str, str]]:
    """(what, the BenchOrg attribute giving its count, SQL over n in [first, last])."""
    return [
        (
            "llm calls",
            "llm_calls",
            f"""
            INSERT INTO llm_calls (org_id, source, event_id, time, identity_kind, identity_id,
                                   model, input_tokens, cached_tokens, output_tokens, succeeded)
            SELECT %(org)s, 'bench', 'call-' || n, at, kind, identity, model,
                   tokens, (tokens * share)::bigint, output, ok
            FROM (SELECT n, {_ORDERED_TIME} AS at,
                         CASE WHEN n %% 3 = 0 THEN 'user' ELSE 'agent' END AS kind,
                         'id-' || floor(power(random(), 2) * 300)::int AS identity,
                         'model-' || floor(power(random(), 1.5) * 8)::int AS model,
                         (200 + random() * 4000)::bigint AS tokens, random() * 0.6 AS share,
                         (random() * 800)::bigint AS output, random() > 0.02 AS ok
                  FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS n) AS calls""",
        ),
        (
            "workloads",
            "workloads",
            f"""
            WITH w AS MATERIALIZED (
                SELECT n, least({_TIME}, %(now)s - interval '1 hour') AS start,
                       'id-' || floor(random() * 300)::int AS agent,
                       (1 + floor(random() * 8)) / 2.0 AS cores,
                       ((1 + floor(random() * 16)) * 2^30)::bigint AS memory,
                       power(random(), 3) * interval '3 days' AS lasts, n %% 10 AS fate
                FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS n)
            INSERT INTO workload_events (org_id, source, event_id, time, workload_id, action,
                                         agent_id, cpu_cores, memory_bytes)
            SELECT %(org)s, 'bench', 'allocate-' || n, start, 'w-' || n, 'allocated', agent,
                   cores, memory FROM w
            UNION ALL
            SELECT %(org)s, 'bench', 'resize-' || n, start + lasts / 2, 'w-' || n, 'allocated',
                   agent, cores * 2, memory * 2 FROM w
            WHERE fate < 3 AND start + lasts / 2 < %(now)s
            UNION ALL
            SELECT %(org)s, 'bench', 'release-' || n, start + lasts, 'w-' || n, 'released',
                   NULL, NULL, NULL FROM w
            WHERE fate < 9 AND start + lasts < %(now)s""",
        ),
        (
            "volumes",
            "volumes",
            """
            WITH v AS MATERIALIZED (
                SELECT n, %(now)s - random() * interval '35 days' AS start,
                       'id-' || floor(random() * 300)::int AS agent,
                       ((1 + floor(random() * 100)) * 2^30)::bigint AS size, n %% 4 AS fate
                FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS n)
            INSERT INTO volume_events (org_id, source, event_id, time, volume_id, action,
                                       agent_id, size_bytes)
            SELECT %(org)s, 'bench', 'provision-' || n, start, 'v-' || n, 'provisioned', agent,
                   size FROM v
            UNION ALL
            SELECT %(org)s, 'bench', 'grow-' || n, start + (%(now)s - start) / 3, 'v-' || n,
                   'provisioned', agent, size * 2 FROM v WHERE fate = 1
            UNION ALL
            SELECT %(org)s, 'bench', 'delete-' || n, start + (%(now)s - start) * 2 / 3,
                   'v-' || n, 'deleted', NULL, NULL FROM v WHERE fate = 2""",
        ),
        (
            "threads",
            "threads",
            f"""
            INSERT INTO thread_events (org_id, source, event_id, time, thread_id, identity_kind,
                                       identity_id)
            SELECT %(org)s, 'bench', 'thread-' || n, {_ORDERED_TIME},
                   't-' || n, 'user', 'id-' || floor(random() * 300)::int
            FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS n""",
        ),
        (
            "messages",
            "messages",
            f"""
            INSERT INTO message_events (org_id, source, event_id, time, thread_id, identity_kind,
                                        identity_id)
            SELECT %(org)s, 'bench', 'message-' || n,
                   {_ORDERED_TIME},
                   't-' || (n / 10), 'agent', 'id-' || floor(random() * 300)::int
            FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS n""",
        ),
    ]


_RAW_TABLES = ["llm_calls", "workload_events", "volume_events", "thread_events", "message_events"]
_FINISH = [
    "INSERT INTO orgs (org_id) VALUES (%(org)s)",
    *(
        f"INSERT INTO event_receipts (org_id, source, event_id, time) "
        f"SELECT org_id, source, event_id, time FROM {table} WHERE org_id = %(org)s"
        for table in _RAW_TABLES
    ),
    """INSERT INTO identities (org_id, kind, identity_id, name)
       SELECT %(org)s, kind, 'id-' || n, initcap(kind) || ' ' || n
       FROM generate_series(0, 299) AS n, (VALUES ('agent'), ('user')) AS k(kind)""",
]


def _progress(label: str, done: int, total: int, started: float) -> None:
    width = 30
    filled = width * done // max(total, 1)
    rate = done / max(time.monotonic() - started, 1e-9)
    print(
        f"\r  {label:<28} [{'#' * filled}{'.' * (width - filled)}] {done:>11,}/{total:,}"
        f"  {rate:,.0f}/s",
        end="",
        file=sys.stderr,
        flush=True,
    )


def generate(conn: psycopg.Connection, org: BenchOrg, now: datetime, seed: float) -> None:
    """The organization's raw rows, receipts, names; derived tables are left to rebuild."""
    conn.execute("SELECT setseed(%s)", [seed])
    for what, attribute, sql in _statements():
        total, started = getattr(org, attribute), time.monotonic()
        for first in range(0, total, CHUNK):
            last = min(first + CHUNK, total) - 1
            conn.execute(
                sql, {"org": org.slug, "now": now, "first": first, "last": last, "total": total}
            )
            _progress(f"{org.slug} {what}", last + 1, total, started)
        print(file=sys.stderr)
    for sql in _FINISH:
        conn.execute(sql, {"org": org.slug})
