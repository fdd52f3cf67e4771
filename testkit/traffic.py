"""Traffic for checks at scale: `Events` makes new events of every type for a set of orgs;
`verify` asks every section, per org and for all orgs, over a custom window, and compares each
answer with the oracle over exactly the events the service acknowledged. The load test, the
soak and the Citus rebalance test send and check with these."""

import random
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx

from testkit import oracle
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
