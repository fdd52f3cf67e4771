"""What the load test and the soak run against, send, and check.

`throwaway_service` is a migrated durable PostgreSQL and the real server with keys;
`Events` makes new events of every type for a set of orgs; `verify` asks every section, per
org and for all orgs, over a custom window, and compares each answer with tests' oracle over
exactly the events the service acknowledged.
"""

import random
import shutil
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from api.dev.embedded_postgres import EmbeddedPostgres
from api.storage import migrations
from api.storage.keys import Scope, create_key
from testkit import oracle
from testkit.database import with_connection
from testkit.factories import (
    identity,
    iso,
    llm_call,
    message_sent,
    thread_created,
    volume_deleted,
    volume_provisioned,
    workload_allocated,
    workload_released,
)
from testkit.matching import assert_equal, comparable
from testkit.oracle import OracleWindow
from testkit.server import running_server

SECTIONS = list(oracle.SECTIONS)
PRESETS = ["24h", "7d", "30d"]


@dataclass(frozen=True, slots=True)
class Service:
    url: str  # the server's
    database_url: str
    keys: dict[str, str]  # "ingest" and "admin" (every organization)


@contextmanager
def throwaway_service(name: str) -> Iterator[Service]:
    """A durable PostgreSQL (fsync on, as in production) in a temp dir, migrated, with an
    ingest and an admin key, and the real server on loopback without rate limits; all of it
    stopped and removed on exit."""
    folder = Path(tempfile.mkdtemp(prefix=f"usage-{name}-"))
    cluster = EmbeddedPostgres(folder, durable=True)
    try:
        cluster.start()
        migrations.upgrade(cluster.url)
        keys = {
            scope.value: with_connection(
                cluster.url, lambda conn, scope=scope: create_key(conn, scope, None)
            ).key
            for scope in (Scope.INGEST, Scope.ADMIN)
        }
        with running_server(cluster.url, USAGE_RATE_LIMIT="0") as server:
            yield Service(url=server.url, database_url=cluster.url, keys=keys)
    finally:
        cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)


# When an event happened, drawn with the generator's random numbers.
When = Callable[[random.Random], datetime]


class Events:
    """New events of every type for ``orgs``, at the times ``when`` draws. An org has 300
    workloads and volumes (allocated again: resized) and ``identities`` agent and user ids
    calling 4 models."""

    def __init__(self, seed: int, orgs: list[str], when: When, identities: int = 30) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.orgs = orgs
        self.when = when
        self.identities = identities
        self.serial = 0

    def _envelope(self) -> dict[str, Any]:
        self.serial += 1
        return {
            "org": self.rng.choice(self.orgs),
            "id": f"ev-{self.seed}-{self.serial}",
            "time": self.when(self.rng),
        }

    def next(self) -> dict[str, Any]:
        kind = self.rng.random()
        envelope = self._envelope()
        who = identity(
            id=f"id-{self.rng.randrange(self.identities)}", kind=self.rng.choice(["agent", "user"])
        )
        thing = f"{envelope['org']}-{self.rng.randrange(300)}"
        agent = f"id-{self.rng.randrange(self.identities)}"
        if kind < 0.6:
            return llm_call(
                who=who,
                model=f"model-{self.rng.randrange(4)}",
                input_tokens=self.rng.randrange(1, 5000),
                cached_tokens=0,
                output_tokens=self.rng.randrange(1, 900),
                succeeded=self.rng.random() > 0.05,
                **envelope,
            )
        if kind < 0.7:
            return workload_allocated(
                thing,
                agent=agent,
                cpu_cores=self.rng.choice([0.5, 1, 4]),
                memory_bytes=2**30 * self.rng.randrange(1, 8),
                **envelope,
            )
        if kind < 0.75:
            return workload_released(thing, **envelope)
        if kind < 0.8:
            return volume_provisioned(
                thing, agent=agent, size_bytes=2**30 * self.rng.randrange(1, 50), **envelope
            )
        if kind < 0.82:
            return volume_deleted(thing, **envelope)
        if kind < 0.87:
            return thread_created(f"t-{self.seed}-{self.serial}", who=who, **envelope)
        return message_sent(f"t-{self.rng.randrange(max(self.serial, 1))}", who=who, **envelope)


def verify(
    url: str,
    admin_key: str,
    acknowledged: list[dict],
    orgs: list[str],
    window: tuple[datetime, datetime, str],
    top: int = 5,
) -> int:
    """Every section over ``window`` (start, end, bucket), per org and for all orgs, against
    the oracle over ``acknowledged``; returns how many answers were checked."""
    start, end, bucket = window
    expected_window = OracleWindow.custom(start, end, bucket)
    params = {"start": iso(start), "end": iso(end), "bucket": bucket, "top": top}
    by_org: dict[str | None, list[dict]] = defaultdict(list, {None: acknowledged})
    for event in acknowledged:
        by_org[event["subject"]].append(event)
    checked = 0
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {admin_key}"}) as client:
        for org in [*orgs, None]:
            for section, compute in oracle.SECTIONS.items():
                path = f"/orgs/{org}/usage/{section}" if org else f"/usage/{section}"
                response = client.get(path, params=params, timeout=120)
                response.raise_for_status()
                expected = compute(by_org[org], expected_window, top, org)
                body = response.json()
                assert_equal(
                    comparable({name: body[name] for name in expected}),
                    expected,
                    f"{org or 'all orgs'} {section} {bucket}",
                )
                checked += 1
    return checked
