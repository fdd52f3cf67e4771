"""`make bench-import`: `usage-api import` of a file of a million events (EVENTS) into a
throwaway durable PostgreSQL, as a user runs it; prints events per second, then runs it
again over the same file (everything a duplicate) and prints that rate too."""

import argparse
import json
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec

from api.dev.embedded_postgres import EmbeddedPostgres
from api.storage import migrations
from testkit.server import usage_api

OUT = Path(__file__).resolve().parent.parent / ".data" / "bench"


def write_file(path: Path, count: int, now: datetime) -> None:
    """LLM calls over the last 300 days of 20 orgs and 400 identities, with platform events
    and workloads between them, oldest first as an export would be."""
    start = now - timedelta(days=300)
    step = (now - start) / count
    with path.open("wb") as file:
        for n in range(count):
            time_ = (start + step * n).isoformat()
            org = f"import-{n % 20}"
            who = {"kind": "agent" if n % 3 else "user", "id": f"id-{n % 400}"}
            if n % 50 == 0:
                event = {"type": "workload.allocated", "data": {
                    "workload_id": f"w-{n % 97}", "agent": {"id": f"id-{n % 400}"},
                    "cpu_cores": 1 + n % 4, "memory_bytes": 2**30}}  # fmt: skip
            elif n % 10 == 0:
                event = {"type": "message.sent", "data": {"thread_id": f"t-{n % 999}",
                                                          "identity": who}}  # fmt: skip
            else:
                event = {"type": "llm.call", "data": {
                    "identity": who, "model": f"model-{n % 7}", "input_tokens": 1000 + n % 5000,
                    "cached_tokens": n % 700, "output_tokens": 50 + n % 900,
                    "succeeded": n % 17 != 0}}  # fmt: skip
            event |= {"specversion": "1.0", "id": f"imp-{n}", "source": "bench-import",
                      "subject": org, "time": time_}  # fmt: skip
            file.write(msgspec.json.encode(event) + b"\n")


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.importing", description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"import-{args.events}.jsonl"
    if not path.exists():
        print(f"writing {args.events:,} events to {path}", file=sys.stderr)
        write_file(path, args.events, datetime.now(UTC))
    folder = Path(tempfile.mkdtemp(prefix="usage-import-"))
    cluster = EmbeddedPostgres(folder)  # durable: fsync on, as in production
    cluster.start()
    results = {}
    try:
        migrations.upgrade(cluster.url)
        for run in ("first", "again"):
            started = time.perf_counter()
            done = usage_api(cluster.url, "import", str(path), timeout=3600)
            seconds = time.perf_counter() - started
            if done.returncode != 0:
                raise SystemExit(done.stderr[-2000:])
            counts = json.loads(done.stdout.strip().splitlines()[-1])
            rate = args.events / seconds
            results[run] = {**counts, "seconds": round(seconds, 1), "events_per_second": rate}
            print(f"import ({run}): {seconds:.0f} s, {rate:,.0f} events/s; {counts}")
    finally:
        cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)
    (OUT / "import-results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
