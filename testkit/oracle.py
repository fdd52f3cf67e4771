"""A reference implementation of the contract in plain Python, for tests to compare against.

Written from the design, not from the service's SQL: integer microseconds since the epoch for
time, a list of event dicts (as posted) for data.
"""

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any
from zoneinfo import ZoneInfo

US = 1_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MONDAY_US = 4 * 86_400 * US  # 1970-01-05
WIDTH_US = {
    name: seconds * US
    for name, seconds in {
        "5m": 300,
        "15m": 900,
        "30m": 1800,
        "1h": 3600,
        "6h": 21_600,
        "1d": 86_400,
        "7d": 604_800,
    }.items()
}
PRESETS = {
    "24h": ("5m", 86_400 * US),
    "7d": ("1h", 7 * 86_400 * US),
    "30d": ("6h", 30 * 86_400 * US),
}
GIB = 2**30


def epoch_us(moment: datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * US + delta.microseconds


def from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def floor_us(us: int, bucket: str) -> int:
    origin = _MONDAY_US if bucket == "7d" else 0
    return us - (us - origin) % WIDTH_US[bucket]


def ceil_us(us: int, bucket: str) -> int:
    floor = floor_us(us, bucket)
    return floor if floor == us else floor + WIDTH_US[bucket]


def event_us(event: dict) -> int:
    return epoch_us(datetime.fromisoformat(event["time"]))


def _is_boundary(local: datetime, bucket: str) -> bool:
    """Whether a local time read off the zone's clock starts a bucket (§3.1): a whole multiple
    of the width since local midnight (a Monday's for 7d), at its first occurrence only."""
    minutes = local.hour * 60 + local.minute
    if local.fold or local.second or local.microsecond:
        return False
    if bucket == "7d":
        return minutes == 0 and local.weekday() == 0
    return minutes % (WIDTH_US[bucket] // (60 * US)) == 0


def _walk(us: int, bucket: str, zone: ZoneInfo, step: int) -> Iterator[int]:
    """Boundaries from ``us`` on, upward (step 1) or downward (step -1), found by reading the
    zone's clock at every whole UTC minute (the zones tested have whole-minute offsets)."""
    minute = 60 * US
    at = (us // minute + (1 if step > 0 and us % minute else 0)) * minute
    while True:
        if _is_boundary(from_us(at).astimezone(zone), bucket):
            yield at
        at += step * minute


@dataclass(frozen=True)
class OracleWindow:
    bucket: str
    counted_from: int  # µs
    as_of: int  # µs
    boundaries: tuple[int, ...]  # the buckets' bounds, µs

    @classmethod
    def preset(
        cls, name: str, as_of: datetime, bucket: str | None = None, tz: str = "UTC"
    ) -> "OracleWindow":
        default, duration = PRESETS[name]
        bucket = bucket or default
        zone = ZoneInfo(tz)
        end = next(_walk(epoch_us(as_of), bucket, zone, 1))
        earlier = list(islice(_walk(end - 1, bucket, zone, -1), duration // WIDTH_US[bucket]))
        boundaries = (*reversed(earlier), end)
        return cls(bucket, boundaries[0], epoch_us(as_of), boundaries)

    @classmethod
    def custom(
        cls, start: datetime, as_of: datetime, bucket: str | None, tz: str = "UTC"
    ) -> "OracleWindow":
        s, a = epoch_us(start), epoch_us(as_of)
        zone = ZoneInfo(tz)
        for name in [bucket] if bucket else WIDTH_US:
            boundaries = [next(_walk(s, name, zone, -1))]
            for boundary in _walk(boundaries[0] + 1, name, zone, 1):
                boundaries.append(boundary)
                if boundary >= a or (bucket is None and len(boundaries) > 301):
                    break
            if bucket or len(boundaries) <= 301:
                return cls(name, s, a, tuple(boundaries))
        raise AssertionError("a 7d bucket always fits")

    def buckets(self) -> list[int]:
        return list(self.boundaries[:-1])

    def end_of(self, bucket: int) -> int:
        return self.boundaries[bisect_right(self.boundaries, bucket)]

    def counts(self, us: int) -> bool:
        return self.counted_from <= us < self.as_of

    def bucket_of(self, us: int) -> int:
        return self.boundaries[bisect_right(self.boundaries, us) - 1]

    def partial(self, bucket: int) -> bool:
        return bucket < self.counted_from or self.end_of(bucket) > self.as_of


def unique_events(events: list[dict]) -> list[dict]:
    """The stored events: the first of each (subject, source, id)."""
    seen: dict[tuple, dict] = {}
    for event in events:
        seen.setdefault((event["subject"], event["source"], event["id"]), event)
    return list(seen.values())


def names(events: list[dict]) -> dict[tuple[str, str, str], str]:
    """(org, kind, id) → the name on the identity's latest named event (time, source, id)."""
    latest: dict[tuple, tuple] = {}
    for event in events:
        data = event["data"]
        if "identity" in data:
            who = data["identity"]
        elif "agent" in data:
            who = {"kind": "agent", **data["agent"]}
        else:
            continue
        if not who.get("name"):
            continue
        key = (event["subject"], who["kind"], who["id"])
        order = (event_us(event), event["source"], event["id"])
        if key not in latest or latest[key][0] < order:
            latest[key] = (order, who["name"])
    return {key: name for key, (_, name) in latest.items()}


def segments(events: list[dict], kind: str) -> list[tuple]:
    """The allocation rule by hand: sort an object's events, each holds until the next one."""
    allocating, object_field = {
        "workload": ("workload.allocated", "workload_id"),
        "volume": ("volume.provisioned", "volume_id"),
    }[kind]
    by_object: dict[tuple, list[dict]] = defaultdict(list)
    for event in events:
        if event["type"].startswith(kind + "."):
            by_object[event["subject"], event["data"][object_field]].append(event)
    found = []
    for (org, object_id), history in by_object.items():
        history.sort(key=lambda e: (event_us(e), e["type"] != allocating, e["id"], e["source"]))
        for position, event in enumerate(history):
            if event["type"] != allocating:
                continue
            start = event_us(event)
            end = event_us(history[position + 1]) if position + 1 < len(history) else None
            if end == start:
                continue
            data = event["data"]
            sizes = (
                (float(data["cpu_cores"]), data["memory_bytes"])
                if kind == "workload"
                else (data["size_bytes"],)
            )
            found.append((org, object_id, start, end, data["agent"]["id"], *sizes))
    return sorted(found, key=lambda s: (s[0], s[1], s[2]))


def segment_rows(events: list[dict], kind: str) -> list[tuple]:
    """``segments`` as the database's rows hold them (times as datetimes)."""
    return [
        (org, object_id, from_us(start), None if end is None else from_us(end), *rest)
        for org, object_id, start, end, *rest in segments(events, kind)
    ]


def _ranked(items: dict[Any, dict], order, top: int) -> tuple[list, dict | None]:
    ranked = sorted(items.items(), key=order)
    rest = ranked[top:]
    if not rest:
        return ranked[:top], None
    other = {"count": len(rest)}
    for _, figures in rest:
        for name, value in figures.items():
            other[name] = other.get(name, 0) + value
    return ranked[:top], other


def _kept(filters: dict[str, list[str]] | None, **facts: str) -> bool:
    """Whether usage with these facts (org, model, identity as kind:id, agent) passes every
    filter given: any of a filter's values, all of the filters."""
    return all(facts[name] in values for name, values in (filters or {}).items())


def llm(
    events: list[dict], window: OracleWindow, top: int, org: str | None, filters: dict | None = None
) -> dict:
    events = unique_events(events)
    known = names(events)
    series = {b: [0, 0, 0, 0, 0] for b in window.buckets()}
    consumers: dict[tuple, dict] = {}
    models: dict[str, dict] = {}
    orgs: dict[str, dict] = {}
    for event in events:
        us = event_us(event)
        if event["type"] != "llm.call" or not window.counts(us):
            continue
        if org is not None and event["subject"] != org:
            continue
        d = event["data"]
        who = d["identity"]
        if not _kept(
            filters, org=event["subject"], model=d["model"], identity=f"{who['kind']}:{who['id']}"
        ):
            continue
        figures = series[window.bucket_of(us)]
        figures[0] += d["cached_tokens"]
        figures[1] += d["input_tokens"] - d["cached_tokens"]
        figures[2] += d["output_tokens"]
        figures[3 if d["succeeded"] else 4] += 1
        sums = {
            "input_tokens": d["input_tokens"],
            "cached_tokens": d["cached_tokens"],
            "output_tokens": d["output_tokens"],
            "total_tokens": d["input_tokens"] + d["output_tokens"],
            "requests": 1,
        }
        who = (event["subject"], d["identity"]["kind"], d["identity"]["id"])
        for table, key in ((consumers, who), (models, d["model"])):
            entry = table.setdefault(key, dict.fromkeys(sums, 0))
            for name, value in sums.items():
                entry[name] += value
        per_org = orgs.setdefault(
            event["subject"],
            dict.fromkeys(
                [
                    "input_tokens",
                    "cached_tokens",
                    "output_tokens",
                    "successful_requests",
                    "failed_requests",
                    "total_tokens",
                ],
                0,
            ),
        )
        per_org["input_tokens"] += d["input_tokens"]
        per_org["cached_tokens"] += d["cached_tokens"]
        per_org["output_tokens"] += d["output_tokens"]
        per_org["total_tokens"] += d["input_tokens"] + d["output_tokens"]
        per_org["successful_requests" if d["succeeded"] else "failed_requests"] += 1
    series_out = [
        {
            "start": b,
            "end": window.end_of(b),
            "partial": window.partial(b),
            "cached_input_tokens": f[0],
            "fresh_input_tokens": f[1],
            "output_tokens": f[2],
            "successful_requests": f[3],
            "failed_requests": f[4],
        }
        for b, f in series.items()
    ]
    top_consumers, other_consumers = _ranked(
        consumers, lambda item: (-item[1]["total_tokens"], item[0][2], item[0][1], item[0][0]), top
    )
    by_model, other_models = _ranked(models, lambda item: (-item[1]["total_tokens"], item[0]), top)
    result = {
        "summary": {
            "input_tokens": sum(f[0] + f[1] for f in series.values()),
            "cached_tokens": sum(f[0] for f in series.values()),
            "output_tokens": sum(f[2] for f in series.values()),
            "successful_requests": sum(f[3] for f in series.values()),
            "failed_requests": sum(f[4] for f in series.values()),
        },
        "series": series_out,
        "top_consumers": [
            {
                "identity": {"kind": kind, "id": id_, "name": known.get((o, kind, id_), id_)}
                | ({"org": o} if org is None else {}),
                **figures,
            }
            for (o, kind, id_), figures in top_consumers
        ],
        "by_model": [{"model": model, **figures} for model, figures in by_model],
        "other_consumers": other_consumers,
        "other_models": other_models,
    }
    if org is None:
        by_org, other_orgs = _ranked(orgs, lambda item: (-item[1]["total_tokens"], item[0]), top)
        result["by_org"] = [{"org": o, **_without_total(f)} for o, f in by_org]
        result["other_orgs"] = _without_total(other_orgs) if other_orgs else None
    return result


def _without_total(figures: dict) -> dict:
    return {name: value for name, value in figures.items() if name != "total_tokens"}


def allocated(
    events: list[dict],
    window: OracleWindow,
    top: int,
    org: str | None,
    kind: str,
    filters: dict | None = None,
) -> dict:
    """Compute (kind "workload") or storage ("volume") hours, split exactly across buckets."""
    events = unique_events(events)
    known = names(events)
    figures_of = (
        {"cpu_core_hours": lambda s: s[5], "ram_gb_hours": lambda s: s[6] / GIB}
        if kind == "workload"
        else {"storage_gb_hours": lambda s: s[5] / GIB}
    )
    series = {b: dict.fromkeys(figures_of, 0.0) for b in window.buckets()}
    agents: dict[tuple, dict] = {}
    orgs: dict[str, dict] = {}
    for segment in segments(events, kind):
        if org is not None and segment[0] != org:
            continue
        if not _kept(filters, org=segment[0], agent=segment[4]):
            continue
        start = max(segment[2], window.counted_from)
        end = min(segment[3] if segment[3] is not None else window.as_of, window.as_of)
        if end <= start:
            continue
        bucket = window.bucket_of(start)
        while bucket < end:
            bucket_end = window.end_of(bucket)
            seconds = (min(end, bucket_end) - max(start, bucket)) / US
            for name, rate in figures_of.items():
                series[bucket][name] += rate(segment) * seconds / 3600
            bucket = bucket_end
        for table, key in ((agents, (segment[0], segment[4])), (orgs, segment[0])):
            entry = table.setdefault(key, dict.fromkeys(figures_of, 0.0))
            for name, rate in figures_of.items():
                entry[name] += rate(segment) * (end - start) / US / 3600
    ranking = next(iter(figures_of))
    top_agents, other_agents = _ranked(
        agents, lambda item: (-item[1][ranking], item[0][1], item[0][0]), top
    )
    result = {
        "summary": {name: sum(f[name] for f in series.values()) for name in figures_of},
        "series": [
            {"start": b, "end": window.end_of(b), "partial": window.partial(b), **f}
            for b, f in series.items()
        ],
        "top_agents": [
            {
                "agent": {"id": agent, "name": known.get((o, "agent", agent), agent)}
                | ({"org": o} if org is None else {}),
                **figures,
            }
            for (o, agent), figures in top_agents
        ],
        "other_agents": other_agents,
    }
    if org is None:
        by_org, other_orgs = _ranked(orgs, lambda item: (-item[1][ranking], item[0]), top)
        result["by_org"] = [{"org": o, **f} for o, f in by_org]
        result["other_orgs"] = other_orgs
    return result


def platform(
    events: list[dict], window: OracleWindow, top: int, org: str | None, filters: dict | None = None
) -> dict:
    events = unique_events(events)
    series = {b: {"threads_created": 0, "messages_sent": 0} for b in window.buckets()}
    orgs: dict[str, dict] = {}
    for event in events:
        us = event_us(event)
        if event["type"] not in ("thread.created", "message.sent") or not window.counts(us):
            continue
        if org is not None and event["subject"] != org:
            continue
        who = event["data"]["identity"]
        if not _kept(filters, org=event["subject"], identity=f"{who['kind']}:{who['id']}"):
            continue
        name = "threads_created" if event["type"] == "thread.created" else "messages_sent"
        series[window.bucket_of(us)][name] += 1
        per_org = orgs.setdefault(event["subject"], {"threads_created": 0, "messages_sent": 0})
        per_org[name] += 1
    result = {
        "summary": {
            name: sum(f[name] for f in series.values())
            for name in ("threads_created", "messages_sent")
        },
        "series": [
            {"start": b, "end": window.end_of(b), "partial": window.partial(b), **f}
            for b, f in series.items()
        ],
    }
    if org is None:
        by_org, other_orgs = _ranked(
            orgs,
            lambda item: (-item[1]["messages_sent"], -item[1]["threads_created"], item[0]),
            top,
        )
        result["by_org"] = [{"org": o, **f} for o, f in by_org]
        result["other_orgs"] = other_orgs
    return result


SECTIONS = {
    "llm": llm,
    "compute": lambda *args, filters=None: allocated(*args, "workload", filters),
    "storage": lambda *args, filters=None: allocated(*args, "volume", filters),
    "platform": platform,
}


# Groups over time: the section's oracle once per key, restricted to that key by a filter.
_SCORES = {
    "llm": lambda s: s["input_tokens"] + s["output_tokens"],
    "compute": lambda s: s["cpu_core_hours"],
    "storage": lambda s: s["storage_gb_hours"],
    "platform": lambda s: s["messages_sent"] + s["threads_created"],
}
# Whether a key's summary shows any usage (a call with no tokens is usage; an agent's
# reservation is only if it held something).
_USED = {
    "llm": lambda s: s["successful_requests"] + s["failed_requests"] > 0,
    "compute": lambda s: s["cpu_core_hours"] > 0,
    "storage": lambda s: s["storage_gb_hours"] > 0,
    "platform": lambda s: s["messages_sent"] + s["threads_created"] > 0,
}


# The summary figures of every section (the export's usage_hourly columns).
_ANY_WINDOW = OracleWindow.custom(_EPOCH, _EPOCH + timedelta(hours=1), "1h")
FIGURE_NAMES = {
    name for compute in SECTIONS.values() for name in compute([], _ANY_WINDOW, 1, "x")["summary"]
}


def used(section: str, summary: dict) -> bool:
    return _USED[section](summary)


def usage_keys(events: list[dict], org: str) -> dict[str, set[tuple]]:
    """Per section, the keys the organization's events name (the export's usage_hourly
    keys): LLM (identity kind, id, model), platform (kind, id), compute and storage
    (agent,)."""
    keys: dict[str, set[tuple]] = {section: set() for section in SECTIONS}
    for event in unique_events(events):
        if event["subject"] != org:
            continue
        data, kind = event["data"], event["type"]
        if kind == "llm.call":
            keys["llm"].add((data["identity"]["kind"], data["identity"]["id"], data["model"]))
        elif kind in ("thread.created", "message.sent"):
            keys["platform"].add((data["identity"]["kind"], data["identity"]["id"]))
        elif kind == "workload.allocated":
            keys["compute"].add((data["agent"]["id"],))
        elif kind == "volume.provisioned":
            keys["storage"].add((data["agent"]["id"],))
    return keys


def key_filters(section: str, key: tuple) -> dict[str, list[str]]:
    """The filters that keep a key of ``usage_keys`` alone."""
    if section == "llm":
        return {"identity": [f"{key[0]}:{key[1]}"], "model": [key[2]]}
    if section == "platform":
        return {"identity": [f"{key[0]}:{key[1]}"]}
    return {"agent": [key[0]]}


def _group_keys(events: list[dict], section: str, by: str) -> set[tuple]:
    """(org, value) of every key in the events: value is a model, kind:id, an agent id or
    the org itself."""
    found = set()
    for event in unique_events(events):
        data, org = event["data"], event["subject"]
        if by == "org":
            found.add((org, org))
        elif by == "model" and "model" in data:
            found.add((org, data["model"]))
        elif by == "identity" and "identity" in data:
            found.add((org, f"{data['identity']['kind']}:{data['identity']['id']}"))
        elif by == "agent" and "agent" in data:
            found.add((org, data["agent"]["id"]))
    return found


def groups(
    section: str,
    events: list[dict],
    window: OracleWindow,
    top: int,
    org: str | None,
    filters: dict | None,
    by: str,
) -> dict:
    compute = SECTIONS[section]
    known = names(unique_events(events))
    # Cross-org, identities and agents are per org; models and orgs are keys by themselves.
    per_org = by in ("identity", "agent")
    keys = {
        (key_org if per_org else None, value) for key_org, value in _group_keys(events, section, by)
    }
    found = []
    for key_org, value in keys:
        restricted = dict(filters or {})
        if by in restricted and value not in restricted[by]:
            continue
        restricted[by] = [value]
        if key_org is not None:
            if org is not None and key_org != org:
                continue
            if "org" in restricted and key_org not in restricted["org"]:
                continue
            restricted["org"] = [key_org]
        result = compute(events, window, top, org, filters=restricted)
        if _USED[section](result["summary"]):
            found.append(((key_org, value), result))

    def order(item):
        (key_org, value), result = item
        tie = (value.split(":", 1)[1], value.split(":", 1)[0]) if by == "identity" else (value,)
        return (-_SCORES[section](result["summary"]), *tie, key_org or "")

    found.sort(key=order)
    chosen, rest = found[:top], found[top:]
    out = {
        "groups": [
            {
                "key": _key(by, value, key_org, known, org is None),
                "summary": result["summary"],
                "series": result["series"],
            }
            for (key_org, value), result in chosen
        ],
        "other": None,
    }
    if rest:
        summaries = [result["summary"] for _, result in rest]
        serieses = [result["series"] for _, result in rest]
        out["other"] = {
            "count": len(rest),
            "summary": {name: sum(s[name] for s in summaries) for name in summaries[0]},
            "series": [
                {
                    **buckets[0],
                    **{
                        name: sum(b[name] for b in buckets)
                        for name in buckets[0]
                        if name not in ("start", "end", "partial")
                    },
                }
                for buckets in zip(*serieses, strict=True)
            ],
        }
    return out


def _key(by: str, value: str, org: str | None, known: dict, cross_org: bool) -> dict:
    if by in ("model", "org"):
        return {by: value}
    kind, id_ = value.split(":", 1) if by == "identity" else ("agent", value)
    holder = {"id": id_, "name": known.get((org, kind, id_), id_)}
    if by == "identity":
        holder = {"kind": kind, **holder}
    return {by: holder | ({"org": org} if cross_org else {})}


# Thresholds (§10): a period is a day, a week from Monday or a month on a zone's clock, from
# local midnight (a day whose midnight the zone skips is part of the day before).
def period_of(us: int, period: str, tz: str) -> tuple[int, int]:
    """``[start, end)`` of the period holding ``us``, in µs."""
    zone = ZoneInfo(tz)
    if period != "month":
        bucket = "1d" if period == "day" else "7d"
        return next(_walk(us, bucket, zone, -1)), next(_walk(us + 1, bucket, zone, 1))
    day = from_us(next(_walk(us, "1d", zone, -1))).astimezone(zone).date()
    following = (day.replace(day=1) + timedelta(days=32)).replace(day=1)
    return _first_boundary_on(day.replace(day=1), zone), _first_boundary_on(following, zone)


def _first_boundary_on(first: Any, zone: ZoneInfo) -> int:
    """The first day boundary whose local date is ``first`` or later."""
    around = epoch_us(datetime(first.year, first.month, first.day, tzinfo=zone)) - 3 * 3600 * US
    return next(
        b for b in _walk(around, "1d", zone, 1) if from_us(b).astimezone(zone).date() >= first
    )


@dataclass(frozen=True)
class OracleThreshold:
    name: str
    org: str
    section: str
    measure: str
    period: str
    tz: str
    limit: float
    filters: dict | None
    created_us: int


def period_figure(events: list[dict], threshold: OracleThreshold, start: int, as_of: int) -> float:
    """The threshold's figure over ``[start, as_of)``."""
    if as_of <= start:
        return 0
    window = OracleWindow("1d", start, as_of, (start, as_of))  # one bucket: the span
    found = SECTIONS[threshold.section](events, window, 1, threshold.org, filters=threshold.filters)
    return found["summary"][threshold.measure]


def crossings(
    steps: list[tuple[list[dict], int]], thresholds: list[OracleThreshold]
) -> dict[tuple[str, int], float]:
    """(threshold, period start) → the figure at the first evaluation that found the period
    over the limit. ``steps``: events sent, then an evaluation at an instant (µs), in order;
    every period of a threshold from its creation to the evaluation is looked at."""
    sent: list[dict] = []
    found: dict[tuple[str, int], float] = {}
    for events, now in steps:
        sent += events
        for threshold in thresholds:
            start, end = period_of(threshold.created_us, threshold.period, threshold.tz)
            while start <= now:
                value = period_figure(sent, threshold, start, min(end, now))
                if value > threshold.limit:
                    found.setdefault((threshold.name, start), value)
                start, end = end, period_of(end, threshold.period, threshold.tz)[1]
    return found
