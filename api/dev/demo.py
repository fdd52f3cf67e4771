"""Demo data: three organizations' last 35 days, loaded through the ingest path of POST /events.

Deterministic for a seed and an hour: times are laid out back from the current hour, and
event ids depend only on the seed, so loading twice stores nothing new the second time.
"""

import math
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import psycopg

from api.core.parsing import Accepting, BodyKind, parse_events
from api.progress import Progress
from api.storage.db import connect_kwargs
from api.storage.folding import fold_all
from api.storage.ingest import ingest

DAYS = 35
BATCH_SIZE = 5_000
GIB = 2**30


@dataclass(frozen=True)
class DemoOrg:
    slug: str
    calls_per_hour: float  # at the weekday peak
    agents: int
    users: int
    workloads: int
    volumes: int


ORGS = (
    DemoOrg("acme", calls_per_hour=260, agents=36, users=24, workloads=420, volumes=80),
    DemoOrg("globex", calls_per_hour=120, agents=20, users=14, workloads=200, volumes=40),
    DemoOrg("initech", calls_per_hour=45, agents=12, users=8, workloads=90, volumes=18),
)
DEMO_ORG = ORGS[0].slug

# (model, typical share of input served from the prompt cache, relative popularity)
MODELS = (
    ("claude-sonnet-4-5", 0.62, 30),
    ("claude-haiku-4-5", 0.45, 22),
    ("gpt-5", 0.38, 16),
    ("gpt-5-mini", 0.24, 14),
    ("gemini-2.5-pro", 0.30, 9),
    ("llama-4-maverick", 0.06, 5),
    ("mistral-large-2", 0.12, 4),
)

_AGENT_ROLES = (
    "Support Triage",
    "Code Reviewer",
    "Release Notes",
    "Invoice Reader",
    "Lead Qualifier",
    "Docs Writer",
    "Test Author",
    "Incident Scribe",
    "Data Cleaner",
    "Churn Analyst",
    "Onboarding Guide",
    "SQL Helper",
    "Translator",
    "Contract Checker",
    "Research Scout",
    "Meeting Summarizer",
    "Ticket Router",
    "Security Auditor",
)
_FIRST_NAMES = (
    "Ada",
    "Grace",
    "Linus",
    "Barbara",
    "Ken",
    "Margaret",
    "Dennis",
    "Frances",
    "Alan",
    "Radia",
    "Edsger",
    "Hedy",
    "Guido",
    "Sophie",
    "Tim",
    "Shafi",
    "Yukihiro",
    "Anita",
)
_LAST_NAMES = (
    "Lovelace",
    "Hopper",
    "Torvalds",
    "Liskov",
    "Thompson",
    "Hamilton",
    "Ritchie",
    "Allen",
    "Turing",
    "Perlman",
    "Dijkstra",
    "Lamarr",
    "van Rossum",
    "Wilson",
    "Berners-Lee",
)


class _Event(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    source: str
    type: str
    subject: str
    time: datetime
    data: dict[str, Any]
    specversion: str = "1.0"


def demo_events(seed: int, now: datetime) -> list[_Event]:
    """Every demo event, oldest first, for the 35 days before the hour of ``now``."""
    end = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=DAYS)
    events: list[_Event] = []
    for number, org in enumerate(ORGS):
        rng = random.Random(seed * 1_000 + number)
        events.extend(_OrgGenerator(org, rng, start, end).events())
    events.sort(key=lambda event: (event.time, event.subject, event.id))
    return events


class _OrgGenerator:
    def __init__(self, org: DemoOrg, rng: random.Random, start: datetime, end: datetime):
        self.org, self.rng, self.start, self.end = org, rng, start, end
        self.agents = [self._agent(n) for n in range(org.agents)]
        self.users = [self._user(n) for n in range(org.users)]
        # A few agents are renamed halfway: the latest name must win.
        self.renamed = {agent_id for agent_id, _ in self.agents[:3]}
        self.counter = 0

    def events(self) -> Iterator[_Event]:
        yield from self._llm_calls_and_chats()
        yield from self._workloads()
        yield from self._volumes()

    def _agent(self, n: int) -> tuple[str, str]:
        role = _AGENT_ROLES[n % len(_AGENT_ROLES)]
        suffix = f" {n // len(_AGENT_ROLES) + 1}" if n >= len(_AGENT_ROLES) else ""
        return (f"agt-{self.org.slug[:3]}-{n:03d}", role + suffix)

    def _user(self, n: int) -> tuple[str, str]:
        name = f"{self.rng.choice(_FIRST_NAMES)} {self.rng.choice(_LAST_NAMES)}"
        return (f"usr-{self.org.slug[:3]}-{n:03d}", name)

    def _event(self, type_: str, source: str, time: datetime, data: dict) -> _Event:
        self.counter += 1
        return _Event(
            id=f"demo-{self.org.slug}-{self.counter:08d}",
            source=source,
            type=type_,
            subject=self.org.slug,
            time=time,
            data=data,
        )

    def _identity(self, time: datetime) -> dict[str, str]:
        # Popularity falls off like a power law: a few identities consume most.
        if self.rng.random() < 0.72:
            kind, pool = "agent", self.agents
        else:
            kind, pool = "user", self.users
        identity_id, name = pool[(int(self.rng.paretovariate(1.1)) - 1) % len(pool)]
        if identity_id in self.renamed and time < self.start + (self.end - self.start) / 2:
            name = f"{name} (legacy)"
        return {"kind": kind, "id": identity_id, "name": name}

    def _rate(self, hour: datetime) -> float:
        """Calls per hour: a working-day curve peaking mid-afternoon UTC, quieter weekends."""
        daily = 0.15 + 0.85 * math.exp(-(((hour.hour + 0.5 - 14.0) / 4.5) ** 2))
        weekly = 0.35 if hour.weekday() >= 5 else 1.0
        return self.org.calls_per_hour * daily * weekly

    def _llm_calls_and_chats(self) -> Iterator[_Event]:
        models = [model for model, _, _ in MODELS]
        weights = [weight for _, _, weight in MODELS]
        cache_ratio = {model: ratio for model, ratio, _ in MODELS}
        hour = self.start
        thread_ids: list[str] = []
        while hour < self.end:
            calls = _poisson(self.rng, self._rate(hour) * self.rng.uniform(0.8, 1.2))
            for _ in range(calls):
                time = hour + timedelta(seconds=self.rng.uniform(0, 3600))
                identity = self._identity(time)
                model = self.rng.choices(models, weights)[0]
                input_tokens = int(self.rng.lognormvariate(math.log(3_200), 0.9))
                ratio = min(1.0, max(0.0, self.rng.gauss(cache_ratio[model], 0.15)))
                succeeded = self.rng.random() >= 0.02
                output = int(self.rng.lognormvariate(math.log(420), 0.8)) if succeeded else 0
                yield self._event(
                    "llm.call",
                    "llm-gateway",
                    time,
                    {
                        "identity": identity,
                        "model": model,
                        "input_tokens": input_tokens,
                        "cached_tokens": int(input_tokens * ratio),
                        "output_tokens": output,
                        "succeeded": succeeded,
                    },
                )
                if identity["kind"] == "user" or self.rng.random() < 0.25:
                    if not thread_ids or self.rng.random() < 0.2:
                        thread_ids.append(f"thr-{self.org.slug[:3]}-{len(thread_ids):06d}")
                        yield self._event(
                            "thread.created",
                            "chat-service",
                            time,
                            {"thread_id": thread_ids[-1], "identity": identity},
                        )
                    thread_id = self.rng.choice(thread_ids[-50:])
                    for _ in range(1 + _poisson(self.rng, 1.5)):
                        yield self._event(
                            "message.sent",
                            "chat-service",
                            time,
                            {"thread_id": thread_id, "identity": identity},
                        )
            hour += timedelta(hours=1)

    def _lifetime(self, shortest: timedelta, longest: timedelta) -> timedelta:
        low, high = math.log(shortest.total_seconds()), math.log(longest.total_seconds())
        return timedelta(seconds=math.exp(self.rng.uniform(low, high)))

    def _agent_ref(self) -> dict[str, str]:
        agent_id, name = self.rng.choice(self.agents)
        return {"id": agent_id, "name": name}

    def _workloads(self) -> Iterator[_Event]:
        span = (self.end - self.start).total_seconds()
        for n in range(self.org.workloads):
            workload_id = f"wl-{self.org.slug[:3]}-{n:05d}"
            began = self.start + timedelta(seconds=self.rng.uniform(0, span))
            ends = began + self._lifetime(timedelta(minutes=2), timedelta(days=6))
            agent = self._agent_ref()
            cores = self.rng.choice((0.25, 0.5, 1, 2, 4, 8))
            memory = self.rng.choice((1, 2, 4, 8, 16, 32)) * GIB // 2
            yield self._event(
                "workload.allocated",
                "scheduler",
                began,
                {
                    "workload_id": workload_id,
                    "agent": agent,
                    "cpu_cores": cores,
                    "memory_bytes": memory,
                },
            )
            if self.rng.random() < 0.3:
                resized = began + (min(ends, self.end) - began) * self.rng.uniform(0.2, 0.8)
                yield self._event(
                    "workload.allocated",
                    "scheduler",
                    resized,
                    {
                        "workload_id": workload_id,
                        "agent": agent,
                        "cpu_cores": cores * 2,
                        "memory_bytes": memory * 2,
                    },
                )
            if ends < self.end:
                yield self._event(
                    "workload.released", "scheduler", ends, {"workload_id": workload_id}
                )

    def _volumes(self) -> Iterator[_Event]:
        span = (self.end - self.start).total_seconds()
        for n in range(self.org.volumes):
            volume_id = f"vol-{self.org.slug[:3]}-{n:04d}"
            created = self.start + timedelta(seconds=self.rng.uniform(0, span * 0.9))
            agent = self._agent_ref()
            size = self.rng.choice((1, 5, 10, 20, 50, 100, 250)) * GIB
            yield self._event(
                "volume.provisioned",
                "volume-controller",
                created,
                {"volume_id": volume_id, "agent": agent, "size_bytes": size},
            )
            if self.rng.random() < 0.3:
                grown = created + (self.end - created) * self.rng.uniform(0.1, 0.6)
                yield self._event(
                    "volume.provisioned",
                    "volume-controller",
                    grown,
                    {"volume_id": volume_id, "agent": agent, "size_bytes": size * 2},
                )
            if self.rng.random() < 0.25:
                deleted = created + (self.end - created) * self.rng.uniform(0.65, 0.99)
                yield self._event(
                    "volume.deleted", "volume-controller", deleted, {"volume_id": volume_id}
                )


def _poisson(rng: random.Random, mean: float) -> int:
    """Knuth's method for small means, a rounded normal for large ones."""
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


async def load_demo(database_url: str, seed: int = 1, now: datetime | None = None) -> None:
    now = now or datetime.now(UTC)
    events = demo_events(seed, now)
    # Loaded as an import is: the oldest are up to an hour older than POST /events takes.
    accepting = Accepting(now)
    progress = Progress("Loading demo events", len(events))
    accepted = 0
    async with await psycopg.AsyncConnection.connect(database_url, **connect_kwargs()) as conn:
        for first in range(0, len(events), BATCH_SIZE):
            body = msgspec.json.encode(events[first : first + BATCH_SIZE])
            result = await ingest(conn, parse_events(body, BodyKind.BATCH, accepting))
            accepted += result.accepted
            await fold_all(conn)  # as an import does: no queue left for the server
            done = min(first + BATCH_SIZE, len(events))
            progress.update(done, f"{done:,}/{len(events):,}")
    progress.finish(len(events), f"{len(events):,}/{len(events):,}")
    print(
        f"Demo data: {accepted:,} events stored ({len(events) - accepted:,} already there) "
        f"for {', '.join(org.slug for org in ORGS)}",
        file=sys.stderr,
    )
