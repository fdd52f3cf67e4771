"""Compute and storage: reservations integrated over time, from allocation segments.

Each segment is clipped to the counted window ``[counted_from, as_of)`` (a running workload
or live volume counts up to ``as_of``) and split exactly at bucket edges: a bucket gets the
reserved amount times the seconds of the segment that fall inside it.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from sqlalchemy import (
    CTE,
    DateTime,
    Float,
    Table,
    and_,
    cast,
    column,
    extract,
    func,
    literal,
    or_,
    select,
    values,
)

from api.db import Compiled, compile_statement
from api.schema import identities, volume_segments, workload_segments
from api.sections.common import (
    AS_OF,
    COUNTED_FROM,
    FIRST_BUCKET,
    LAST_BUCKET,
    WIDTH,
    Scope,
    SectionQuery,
    bucket_of,
    code_point_order,
    fetch_all,
    split_top,
    top_n,
)
from api.sections.shapes import (
    AgentCompute,
    AgentOut,
    AgentStorage,
    AllOrgsComputeUsage,
    AllOrgsStorageUsage,
    ComputeBucket,
    ComputeOrgUsage,
    ComputeSummary,
    ComputeUsage,
    OtherCompute,
    OtherStorage,
    StorageBucket,
    StorageOrgUsage,
    StorageSummary,
    StorageUsage,
)

GIB = 2**30
_TIMESTAMP = DateTime(timezone=True)
_SECONDS_PER_HOUR = 3600.0


@dataclass(frozen=True, slots=True)
class _Shapes:
    usage: type
    all_orgs: type
    summary: type
    bucket: type
    agent: type
    other: type
    org: type


@dataclass(frozen=True, slots=True, eq=False)
class _Kind:
    """One allocation-based section: its segments, its figures and its response shapes."""

    segments: Table
    # figure name → the amount reserved, in the figure's unit per hour (cores, GiB)
    rates: dict[str, Callable[[Table], Any]]
    shapes: _Shapes


COMPUTE = _Kind(
    workload_segments,
    {
        "cpu_core_hours": lambda segments: segments.c.cpu_cores,
        "ram_gb_hours": lambda segments: (
            cast(segments.c.memory_bytes, Float) / literal(float(GIB), Float)
        ),
    },
    _Shapes(
        ComputeUsage,
        AllOrgsComputeUsage,
        ComputeSummary,
        ComputeBucket,
        AgentCompute,
        OtherCompute,
        ComputeOrgUsage,
    ),
)
STORAGE = _Kind(
    volume_segments,
    {
        "storage_gb_hours": lambda segments: (
            cast(segments.c.size_bytes, Float) / literal(float(GIB), Float)
        )
    },
    _Shapes(
        StorageUsage,
        AllOrgsStorageUsage,
        StorageSummary,
        StorageBucket,
        AgentStorage,
        OtherStorage,
        StorageOrgUsage,
    ),
)


def _clipped(kind: _Kind, scope: Scope) -> CTE:
    segments = kind.segments
    return (
        select(
            segments.c.org_id,
            segments.c.agent_id,
            *(rate(segments).label(name) for name, rate in kind.rates.items()),
            func.greatest(segments.c.start_time, COUNTED_FROM).label("held_from"),
            func.least(func.coalesce(segments.c.end_time, AS_OF), AS_OF).label("held_to"),
        )
        .where(
            *scope.where(segments),
            segments.c.start_time < AS_OF,
            or_(segments.c.end_time.is_(None), segments.c.end_time > COUNTED_FROM),
        )
        .cte("clipped")
    )


def _hours(rate: Any, held_from: Any, held_to: Any) -> Any:
    return func.sum(rate * _seconds(held_to - held_from)) / _SECONDS_PER_HOUR


def _series(kind: _Kind, clipped: CTE) -> Compiled:
    """Per bucket, by deltas rather than segment by bucket: a segment adds its rate where
    it starts and takes it back where it ends. A bucket then holds the rate running at its
    start for its whole width, plus each delta inside it for the rest of the bucket from
    the delta's time: O(segments + buckets), however long the segments are."""
    # Each segment gives two deltas, read in one pass: (held_from, +rate), (held_to, -rate).
    ends = (
        values(column("at", _TIMESTAMP), column("sign", Float), name="ends")
        .data([(clipped.c.held_from, 1.0), (clipped.c.held_to, -1.0)])
        .lateral()
    )
    bucket = bucket_of(ends.c.at)
    deltas = (
        select(
            bucket.label("bucket"),
            *((ends.c.sign * clipped.c[name]).label(f"{name}_delta") for name in kind.rates),
            *(
                (ends.c.sign * clipped.c[name] * _seconds(bucket + WIDTH - ends.c.at)).label(
                    f"{name}_within"
                )
                for name in kind.rates
            ),
        )
        .select_from(clipped)
        .join(ends, literal(True))
        .subquery()
    )
    per_bucket = (
        select(
            deltas.c.bucket,
            *(func.sum(deltas.c[f"{name}_{part}"]).label(f"{name}_{part}")
              for name in kind.rates for part in ("delta", "within")),
        )
        .group_by(deltas.c.bucket)
        .subquery()
    )  # fmt: skip
    buckets = (
        func.generate_series(FIRST_BUCKET, LAST_BUCKET, WIDTH)
        .table_valued("bucket")
        .render_derived()
    )
    earlier = {"order_by": buckets.c.bucket, "rows": (None, -1)}
    return compile_statement(
        select(
            buckets.c.bucket,
            *(
                (
                    (
                        func.coalesce(func.sum(per_bucket.c[f"{name}_delta"]).over(**earlier), 0.0)
                        * _seconds(WIDTH)
                        + func.coalesce(per_bucket.c[f"{name}_within"], 0.0)
                    )
                    / _SECONDS_PER_HOUR
                ).label(name)
                for name in kind.rates
            ),
        ).join_from(buckets, per_bucket, per_bucket.c.bucket == buckets.c.bucket, isouter=True)
    )


def _seconds(interval: Any) -> Any:
    # extract() gives numeric since PostgreSQL 14: several times slower to multiply than
    # float8, and doubles are exact to well below the microseconds stored.
    return cast(extract("epoch", interval), Float)


def _per(clipped: CTE, kind: _Kind, *keys: Any) -> Any:
    return (
        select(
            *keys,
            *(
                _hours(clipped.c[name], clipped.c.held_from, clipped.c.held_to).label(name)
                for name in kind.rates
            ),
        )
        .group_by(*keys)
        .subquery()
    )


def _first_rate(kind: _Kind) -> str:
    return next(iter(kind.rates))


def _top_agents(kind: _Kind, clipped: CTE) -> Compiled:
    per_agent = _per(clipped, kind, clipped.c.org_id, clipped.c.agent_id)
    named = (
        select(per_agent, identities.c.name)
        .join_from(
            per_agent,
            identities,
            and_(
                identities.c.org_id == per_agent.c.org_id,
                identities.c.kind == "agent",
                identities.c.identity_id == per_agent.c.agent_id,
            ),
            isouter=True,
        )
        .subquery()
    )
    ranking = _first_rate(kind)
    return compile_statement(
        top_n(
            named,
            ["org_id", "agent_id", "name"],
            list(kind.rates),
            lambda item: [
                item.c[ranking].desc(),
                code_point_order(item.c.agent_id),
                code_point_order(item.c.org_id),
            ],
        )
    )


def _by_org(kind: _Kind, clipped: CTE) -> Compiled:
    per_org = _per(clipped, kind, clipped.c.org_id)
    ranking = _first_rate(kind)
    return compile_statement(
        top_n(
            per_org,
            ["org_id"],
            list(kind.rates),
            lambda item: [item.c[ranking].desc(), code_point_order(item.c.org_id)],
        )
    )


def _statements(kind: _Kind, scope: Scope) -> list[Compiled]:
    clipped = _clipped(kind, scope)
    statements = [_series(kind, clipped), _top_agents(kind, clipped)]
    return statements + ([_by_org(kind, clipped)] if scope is Scope.ALL else [])


_STATEMENTS = {
    (kind, scope): _statements(kind, scope) for kind in (COMPUTE, STORAGE) for scope in Scope
}


async def _figures(
    conn: psycopg.AsyncConnection, kind: _Kind, query: SectionQuery
) -> tuple[list[dict[str, Any]], list[Any], Any, list[Any]]:
    """Per bucket figures, the ranked agents and the others' row, and the by-org rows."""
    results = await fetch_all(conn, _STATEMENTS[kind, query.scope], query.params())
    per_bucket = {row.bucket: row for row in results[0]}
    series = []
    for bucket in query.window.buckets():
        row = per_bucket.get(bucket.start)
        series.append(
            {"start": bucket.start, "partial": bucket.partial}
            | {name: float(getattr(row, name) or 0.0) if row else 0.0 for name in kind.rates}
        )
    agents, others = split_top(results[1])
    return series, agents, others, results[2] if len(results) > 2 else []


def _agent(row: Any, query: SectionQuery) -> AgentOut:
    return AgentOut(
        id=row.agent_id,
        name=row.name or row.agent_id,
        org=row.org_id if query.scope is Scope.ALL else None,
    )


def _sums(row: Any, kind: _Kind) -> dict[str, float]:
    return {name: float(getattr(row, name)) for name in kind.rates}


def _summary(series: list[dict[str, Any]], kind: _Kind) -> dict[str, float]:
    return {name: sum(bucket[name] for bucket in series) for name in kind.rates}


async def allocated_usage(
    kind: _Kind, conn: psycopg.AsyncConnection, query: SectionQuery
) -> ComputeUsage | StorageUsage:
    series, agents, others, org_rows = await _figures(conn, kind, query)
    shapes = kind.shapes
    fields: dict[str, Any] = {
        "org": query.org,
        "window": query.window_out(),
        "summary": shapes.summary(**_summary(series, kind)),
        "series": [shapes.bucket(**bucket) for bucket in series],
        "top_agents": [
            shapes.agent(agent=_agent(row, query), **_sums(row, kind)) for row in agents
        ],
        "other_agents": _other(others, kind),
    }
    if query.scope is Scope.ORG:
        return shapes.usage(**fields)
    orgs, other_orgs = split_top(org_rows)
    return shapes.all_orgs(
        **fields,
        by_org=[shapes.org(org=row.org_id, **_sums(row, kind)) for row in orgs],
        other_orgs=_other(other_orgs, kind),
    )


def _other(row: Any, kind: _Kind) -> Any:
    return None if row is None else kind.shapes.other(count=row.count, **_sums(row, kind))


async def compute_usage(conn: psycopg.AsyncConnection, query: SectionQuery) -> ComputeUsage:
    return await allocated_usage(COMPUTE, conn, query)


async def storage_usage(conn: psycopg.AsyncConnection, query: SectionQuery) -> StorageUsage:
    return await allocated_usage(STORAGE, conn, query)
