"""The performance targets (one server process, this machine, over HTTP), each beside what
the run measured: met or not. Printed last by `make bench` and kept in results.json."""

from collections.abc import Iterator

READ_P95_MS = 10.0  # every section, preset and variant of one org
CROSS_ORG_P95_MS = 20.0  # every section and preset over all organizations
READ_P50_MS = 6.0
FLOOR_P50_MS = 2.5  # the smallest request: platform, 24h
SERVER_OVERHEAD_MS = 1.0  # a small read's p50 minus PostgreSQL's time for it
# The cost of 1,000 LLM calls ingested (decode, validate, write, fold): the server process's
# CPU, and PostgreSQL's statement time (pg_stat_statements).
SERVER_CPU_MS_PER_1000 = 15.0
STATEMENTS_MS_PER_1000 = 40.0
GROWTH = 1.2  # p95 of the 10M-call org over the 1M-call org's, each cell
INGEST_EVENTS_PER_SECOND = 30_000.0
INGEST_BATCH_P99_MS = 150.0
OLDEST_PENDING_P99_S = 2.0  # the folder keeps up: no event waits longer to be folded
SHARE_OF_COPY = 0.10  # ingest against PostgreSQL's own COPY of the same rows
OTLP_SHARE = 0.8  # POST /v1/traces' events/s against POST /events', the same calls
MIXED_EVENTS_PER_SECOND = 10_000.0  # the load test's mix of every event type
BESIDE_INGEST = 1.5  # reads' p95 while ingest runs at 10,000 events/s, over idle
PAGE_LOADS_PER_SECOND = 100.0
THRESHOLD_PASS_S = 10.0  # one watcher pass over 10,000 thresholds, all due
WATCHER_COST = 1.10  # ingest and reads' p95 with a watching server, against without
# Export (issue 36): a backfill of everything stored, end to end; the exporter's peak memory,
# whatever the volume (it streams); the rows of a file.
BACKFILL_EVENTS_PER_SECOND = 200_000.0
EXPORTER_RSS_MB = 400.0
EXPORT_FILE_ROWS = 1_000_000
# Ingest and reads' p95 beside ingest at 10,000 events/s with an exporter passing every 10 s,
# against without; and its lag, at most the interval and one pass.
EXPORTER_INGEST = 0.9
EXPORTER_READS = 1.2


def verdicts(results: dict) -> list[dict]:
    """Each target: what it asks, the worst measured figure and where, and whether it is met."""
    return _rows(_checks(results))


def cost_verdicts(found: dict) -> list[dict]:
    """The targets of the cost of an event and of a request alone (bench.cost's figures)."""
    return _rows(_cost_checks(found))


def export_verdicts(found: dict) -> list[dict]:
    """The export's targets alone (``found``: bench.export's figures)."""
    return _rows(_export_checks(found))


def _rows(checks: Iterator[tuple[str, float, str, bool]]) -> list[dict]:
    return [
        {"target": target, "measured": measured, "where": where, "met": met}
        for target, measured, where, met in checks
    ]


def _checks(results: dict) -> Iterator[tuple[str, float, str, bool]]:
    big, medium = results["reads"].values()
    big_org = next(iter(results["reads"]))
    cells = {
        f"{big_org} {section} {preset}": figures
        for section, by_preset in big.items()
        for preset, figures in by_preset.items()
    }
    cells |= {
        f"{big_org} {label}": figures for label, figures in results["slicing"]["cases"].items()
    }
    for percentile, limit in (("p95_ms", READ_P95_MS), ("p50_ms", READ_P50_MS)):
        where = max(cells, key=lambda cell: cells[cell][percentile])
        worst = cells[where][percentile]
        yield f"reads {percentile[:3]} <= {limit:g} ms", worst, where, worst <= limit
    cross_org = {
        f"{section} {preset}": figures["p95_ms"]
        for section, by_preset in results.get("cross_org", {}).items()
        for preset, figures in by_preset.items()
    }
    if cross_org:
        where = max(cross_org, key=cross_org.__getitem__)
        yield (
            f"all-orgs reads p95 <= {CROSS_ORG_P95_MS:g} ms",
            cross_org[where],
            where,
            cross_org[where] <= CROSS_ORG_P95_MS,
        )
    growth = {
        f"{section} {preset}": big[section][preset]["p95_ms"] / medium[section][preset]["p95_ms"]
        for section in big
        for preset in big[section]
    }
    where = max(growth, key=growth.__getitem__)
    yield f"growth 1M -> 10M <= {GROWTH:g}x", growth[where], where, growth[where] <= GROWTH
    yield from _cost_checks(results)
    beside = results["reads_beside_ingest"]["reads"]
    slower = {
        f"{section} {preset}": beside[section][preset]["p95_ms"] / big[section][preset]["p95_ms"]
        for section in beside
        for preset in beside[section]
    }
    where = max(slower, key=slower.__getitem__)
    yield (
        f"reads beside ingest p95 <= {BESIDE_INGEST:g}x idle",
        slower[where],
        where,
        slower[where] <= BESIDE_INGEST,
    )
    if "thresholds" in results:
        yield from _threshold_checks(results["thresholds"])
    if "export" in results:
        yield from _export_checks(results["export"])


def _cost_checks(found: dict) -> Iterator[tuple[str, float, str, bool]]:
    small = found["small_read"]
    floor = small["p50_ms"]
    yield f"platform 24h p50 <= {FLOOR_P50_MS:g} ms", floor, "", floor <= FLOOR_P50_MS
    if small["statements_ms"] is not None:
        overhead = floor - small["statements_ms"]
        yield (
            f"a read's server overhead <= {SERVER_OVERHEAD_MS:g} ms",
            overhead,
            "platform 24h p50",
            overhead <= SERVER_OVERHEAD_MS,
        )
    ingest = found["ingest"]
    rate = ingest["events_per_second"]
    yield (
        f"ingest >= {INGEST_EVENTS_PER_SECOND:,.0f} events/s",
        rate,
        f"{ingest['clients']} clients",
        rate >= INGEST_EVENTS_PER_SECOND,
    )
    p99 = ingest["p99_ms"]
    yield f"ingest batch p99 <= {INGEST_BATCH_P99_MS:g} ms", p99, "", p99 <= INGEST_BATCH_P99_MS
    oldest = ingest["queue"]["oldest_p99_s"]
    yield (
        f"oldest pending p99 <= {OLDEST_PENDING_P99_S:g} s",
        oldest,
        "",
        oldest <= OLDEST_PENDING_P99_S,
    )
    share = ingest["share_of_copy"]
    yield f"ingest >= {SHARE_OF_COPY:.0%} of COPY (in %)", 100 * share, "", share >= SHARE_OF_COPY
    otlp = found["otlp_ingest"]["events_per_second"] / rate
    yield f"OTLP ingest >= {OTLP_SHARE:g}x POST /events", otlp, "protobuf", otlp >= OTLP_SHARE
    mixed = found["mixed_ingest"]["events_per_second"]
    yield (
        f"mixed ingest >= {MIXED_EVENTS_PER_SECOND:,.0f} events/s",
        mixed,
        f"{found['mixed_ingest']['clients']} clients",
        mixed >= MIXED_EVENTS_PER_SECOND,
    )
    server_cpu = ingest["server_cpu_ms_per_1000"]
    yield (
        f"server CPU per 1,000 <= {SERVER_CPU_MS_PER_1000:g} ms",
        server_cpu,
        "LLM calls",
        server_cpu <= SERVER_CPU_MS_PER_1000,
    )
    statements = ingest["statements_ms_per_1000"]
    if statements is not None:
        yield (
            f"PostgreSQL per 1,000 <= {STATEMENTS_MS_PER_1000:g} ms",
            statements,
            "pg_stat_statements",
            statements <= STATEMENTS_MS_PER_1000,
        )
    pages = found["page_loads"]["per_second"]
    yield f"page loads >= {PAGE_LOADS_PER_SECOND:g}/s", pages, "", pages >= PAGE_LOADS_PER_SECOND


def _threshold_checks(watched: dict) -> Iterator[tuple[str, float, str, bool]]:
    seconds = watched["pass"]["evaluation_s"]
    yield (
        f"10,000 thresholds' pass <= {THRESHOLD_PASS_S:g} s",
        seconds,
        "",
        seconds <= THRESHOLD_PASS_S,
    )
    cost = watched["cost"]
    slower = 1 / cost["ingest_ratio"]
    yield f"ingest with a watcher <= {WATCHER_COST:g}x", slower, "", slower <= WATCHER_COST
    read = cost["read_p95_ratio"]
    yield f"reads with a watcher <= {WATCHER_COST:g}x", read, "p95", read <= WATCHER_COST


def _export_checks(found: dict) -> Iterator[tuple[str, float, str, bool]]:
    done = found["backfill"]
    rate = done["events_per_second"]
    yield (
        f"backfill >= {BACKFILL_EVENTS_PER_SECOND:,.0f} events/s",
        rate,
        f"{done['events']:,} events",
        rate >= BACKFILL_EVENTS_PER_SECOND,
    )
    rss = done["peak_rss_mb"]
    yield f"exporter's RSS <= {EXPORTER_RSS_MB:g} MB", rss, "peak", rss <= EXPORTER_RSS_MB
    rows = done["largest_file_rows"]
    yield (
        f"file rows <= {EXPORT_FILE_ROWS:,}",
        rows,
        done["largest_file_dataset"],
        rows <= EXPORT_FILE_ROWS,
    )
    cost = found["cost"]
    ingest = cost["ingest_ratio"]
    yield f"ingest with an exporter >= {EXPORTER_INGEST:g}x", ingest, "", ingest >= EXPORTER_INGEST
    read = cost["read_p95_ratio"]
    yield (
        f"reads with an exporter <= {EXPORTER_READS:g}x",
        read,
        f"p95 {cost['slowest_read']}",
        read <= EXPORTER_READS,
    )
    lag = cost["lag"]
    yield (
        "export lag <= interval + pass (s)",
        lag["max_s"],
        f"bound {lag['bound_s']:.1f} s",
        lag["max_s"] <= lag["bound_s"],
    )


def report(found: list[dict]) -> None:
    print(f"\n{'target':<34}{'measured':>12}  {'verdict':<8} where")
    for row in found:
        verdict = "met" if row["met"] else "NOT MET"
        print(f"{row['target']:<34}{row['measured']:>12,.1f}  {verdict:<8} {row['where']}")
