"""`make loadtest`: readers and ingesters at once against the real server, for a bounded time,
then every figure checked against the oracle over exactly the acknowledged events.

A throwaway PostgreSQL (durable, as in production) under a temp dir, the real server on
loopback. Ingesters post batches of new events of every type for several orgs, each batch
with 10% of events sent before; readers ask for the four sections of random orgs and
presets. At the end, for each org and for all orgs: every section over the whole period
must equal tests/oracle.py computed from the events acknowledged (200) — none lost, none
counted twice.
"""

import argparse
import asyncio
import random
import sys
import time
from datetime import UTC, datetime, timedelta

import httpx

from bench.stats import percentiles
from bench.traffic import PRESETS, SECTIONS, throwaway_service
from testkit.factories import BATCH
from testkit.traffic import Events, verify

ORGS = ["north", "south", "east", "west"]


def _recent(now: datetime):
    """Times within the two days before ``now``."""
    return lambda rng: now - timedelta(seconds=rng.uniform(0, 2 * 86_400))


async def _ingester(
    client: httpx.AsyncClient, events: Events, batch_size: int, deadline: float, found: dict
) -> None:
    sent: list[dict] = []
    while time.monotonic() < deadline:
        again = events.rng.sample(sent, min(len(sent), batch_size // 10))
        batch = [events.next() for _ in range(batch_size - len(again))] + again
        started = time.perf_counter()
        try:
            response = await client.post("/events", json=batch, headers={"Content-Type": BATCH})
        except httpx.HTTPError as error:
            found["errors"].append(f"ingest: {type(error).__name__}")
            continue
        found["ingest_ms"].append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            found["errors"].append(f"ingest: {response.status_code}")
            continue
        found["acknowledged"].extend(batch)
        sent.extend(batch[: batch_size - len(again)])


async def _reader(client: httpx.AsyncClient, rng: random.Random, deadline: float, found: dict):
    while time.monotonic() < deadline:
        org, section = rng.choice(ORGS), rng.choice(SECTIONS)
        params = {"range": rng.choice(PRESETS)}
        started = time.perf_counter()
        try:
            response = await client.get(f"/orgs/{org}/usage/{section}", params=params)
        except httpx.HTTPError as error:
            found["errors"].append(f"read: {type(error).__name__}")
            continue
        found["read_ms"].append((time.perf_counter() - started) * 1000)
        # An org no event has named yet is a 404, not an error.
        if response.status_code not in (200, 404):
            found["errors"].append(f"read: {response.status_code}")


async def _load(url: str, keys: dict[str, str], args: argparse.Namespace, now: datetime) -> dict:
    found: dict[str, list] = {"acknowledged": [], "errors": [], "ingest_ms": [], "read_ms": []}
    deadline = time.monotonic() + args.seconds
    ingest = {"Authorization": f"Bearer {keys['ingest']}"}
    read = {"Authorization": f"Bearer {keys['admin']}"}
    async with (
        httpx.AsyncClient(base_url=url, headers=ingest, timeout=60) as ingest_client,
        httpx.AsyncClient(base_url=url, headers=read, timeout=60) as read_client,
    ):
        started = time.monotonic()
        await asyncio.gather(
            *(
                _ingester(ingest_client, Events(n, ORGS, _recent(now)), args.batch, deadline, found)
                for n in range(args.ingesters)
            ),
            *(_reader(read_client, random.Random(n), deadline, found) for n in range(args.readers)),
        )
        found["elapsed"] = time.monotonic() - started
    return found


def main() -> None:
    parser = argparse.ArgumentParser(prog="make loadtest", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--ingesters", type=int, default=2)
    parser.add_argument("--readers", type=int, default=4)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    with throwaway_service("loadtest") as service:
        print(
            f"Loading for {args.seconds:.0f} s: {args.ingesters} ingesters "
            f"(batches of {args.batch}, 10% re-sent), {args.readers} readers ...",
            file=sys.stderr,
        )
        now = datetime.now(UTC)
        found = asyncio.run(_load(service.url, service.keys, args, now))
        print("Checking every figure against the oracle ...", file=sys.stderr)
        window = (now - timedelta(days=3), datetime.now(UTC), "1h")
        checked = verify(service.url, service.keys["admin"], found["acknowledged"], ORGS, window)
    _report(found, checked)
    if found["errors"]:
        sys.exit(1)


def _report(found: dict, checked: int) -> None:
    elapsed = found["elapsed"]
    acknowledged = found["acknowledged"]
    unique = len({(e["subject"], e["source"], e["id"]) for e in acknowledged})
    ingest, read = percentiles(found["ingest_ms"]), percentiles(found["read_ms"])
    print(f"\nduration            {elapsed:.1f} s")
    print(
        f"ingest              {len(acknowledged) / elapsed:,.0f} events/s acknowledged "
        f"({unique:,} distinct, {len(acknowledged) - unique:,} re-sent), "
        f"batch p50 {ingest['p50_ms']:.0f} ms, p99 {ingest['p99_ms']:.0f} ms"
    )
    print(
        f"reads               {read['n'] / elapsed:,.0f} requests/s, "
        f"p50 {read['p50_ms']:.0f} ms, p99 {read['p99_ms']:.0f} ms"
    )
    print(f"errors              {len(found['errors'])} {sorted(set(found['errors']))}")
    print(
        f"oracle              {checked} answers (4 orgs and all orgs x 4 sections) equal "
        "the oracle over the acknowledged events: nothing lost, nothing counted twice"
    )


if __name__ == "__main__":
    main()
