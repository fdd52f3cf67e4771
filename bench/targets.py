"""The performance targets (one server process, this machine, over HTTP), each beside what
the run measured: met or not. Printed last by `make bench` and kept in results.json."""

from collections.abc import Iterator

READ_P95_MS = 10.0  # every section, preset and variant, one org and all orgs
READ_P50_MS = 6.0
FLOOR_P50_MS = 3.0  # the smallest request: platform, 24h
GROWTH = 1.2  # p95 of the 10M-call org over the 1M-call org's, each cell
INGEST_EVENTS_PER_SECOND = 30_000.0
INGEST_BATCH_P99_MS = 150.0
OLDEST_PENDING_P99_S = 2.0  # the folder keeps up: no event waits longer to be folded
SHARE_OF_COPY = 0.10  # ingest against PostgreSQL's own COPY of the same rows
MIXED_EVENTS_PER_SECOND = 10_000.0  # the load test's mix of every event type
BESIDE_INGEST = 1.5  # reads' p95 while ingest runs at 10,000 events/s, over idle
PAGE_LOADS_PER_SECOND = 100.0
THRESHOLD_PASS_S = 10.0  # one watcher pass over 10,000 thresholds, all due
WATCHER_COST = 1.10  # ingest and reads' p95 with a watching server, against without


def verdicts(results: dict) -> list[dict]:
    """Each target: what it asks, the worst measured figure and where, and whether it is met."""
    return [
        {"target": target, "measured": measured, "where": where, "met": met}
        for target, measured, where, met in _checks(results)
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
        f"all orgs {section} {preset}": figures
        for section, by_preset in results.get("cross_org", {}).items()
        for preset, figures in by_preset.items()
    }
    cells |= {
        f"{big_org} {label}": figures for label, figures in results["slicing"]["cases"].items()
    }
    for percentile, limit in (("p95_ms", READ_P95_MS), ("p50_ms", READ_P50_MS)):
        where = max(cells, key=lambda cell: cells[cell][percentile])
        worst = cells[where][percentile]
        yield f"reads {percentile[:3]} <= {limit:g} ms", worst, where, worst <= limit
    floor = big["platform"]["24h"]["p50_ms"]
    yield f"platform 24h p50 <= {FLOOR_P50_MS:g} ms", floor, big_org, floor <= FLOOR_P50_MS
    growth = {
        f"{section} {preset}": big[section][preset]["p95_ms"] / medium[section][preset]["p95_ms"]
        for section in big
        for preset in big[section]
    }
    where = max(growth, key=growth.__getitem__)
    yield f"growth 1M -> 10M <= {GROWTH:g}x", growth[where], where, growth[where] <= GROWTH
    ingest = results["ingest"]
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
    mixed = results["mixed_ingest"]["events_per_second"]
    yield (
        f"mixed ingest >= {MIXED_EVENTS_PER_SECOND:,.0f} events/s",
        mixed,
        f"{results['mixed_ingest']['clients']} clients",
        mixed >= MIXED_EVENTS_PER_SECOND,
    )
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
    pages = results["page_loads"]["per_second"]
    yield f"page loads >= {PAGE_LOADS_PER_SECOND:g}/s", pages, "", pages >= PAGE_LOADS_PER_SECOND
    if "thresholds" not in results:
        return
    watched = results["thresholds"]
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


def report(found: list[dict]) -> None:
    print(f"\n{'target':<34}{'measured':>12}  {'verdict':<8} where")
    for row in found:
        verdict = "met" if row["met"] else "NOT MET"
        print(f"{row['target']:<34}{row['measured']:>12,.1f}  {verdict:<8} {row['where']}")
