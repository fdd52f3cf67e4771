"""Compute and storage: reservations integrated over time, from reservation changes.

A reservation changes at the start and end of each segment (api.storage.reservations). Over the
counted window ``[counted_from, as_of)`` (a running workload or live volume counts up to
``as_of``), an amount is the reservation running at ``counted_from`` times the window's
seconds, plus each change in the window times its seconds to ``as_of``; the same holds per
bucket. The reservation running at ``counted_from`` is the one held now less every change
since. So a request reads whole buckets of changes and only the segments starting or
ending at the window's ragged edges, however many segments the window holds.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, partial
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    FromClause,
    Select,
    Subquery,
    and_,
    cast,
    func,
    literal,
    null,
    select,
    true,
    tuple_,
    union_all,
)

from api.core.tiers import RAW
from api.reads.engine import Breakdown, Section, by_org
from api.reads.query import (
    AFTER,
    AS_OF,
    BUCKET_ENDS,
    BUCKET_STARTS,
    COUNTED_FROM,
    SERIES,
    TOTALS,
    Reach,
    Shape,
    in_cover,
)
from api.reads.responses import (
    COMPUTE_GROUPS,
    STORAGE_GROUPS,
    AgentCompute,
    AgentOut,
    AgentStorage,
    AllOrgsComputeUsage,
    AllOrgsStorageUsage,
    ComputeBucket,
    ComputeOrgUsage,
    ComputePrevious,
    ComputeSummary,
    ComputeUsage,
    OtherCompute,
    OtherStorage,
    StorageBucket,
    StorageOrgUsage,
    StoragePrevious,
    StorageSummary,
    StorageUsage,
)
from api.reads.sql import (
    Named,
    Order,
    Where,
    bucket_index,
    code_point_order,
    first_keys,
    top_n,
    with_names,
)
from api.storage.db import Compiled, compile_statement
from api.storage.reservations import VOLUMES, WORKLOADS, Reservations, seconds

GIB = 2**30
_SECONDS_PER_HOUR = 3600
_WINDOW_SECONDS = seconds(AS_OF - COUNTED_FROM)


@dataclass(frozen=True, slots=True)
class _Responses:
    usage: type
    all_orgs: type
    summary: type
    bucket: type
    agent: type
    other: type
    org: type
    previous: type
    groups: tuple[type, type, type]


@dataclass(frozen=True, slots=True)
class _Figure:
    rate: str  # the reserved amount: a column of the segments
    per_unit: int  # the rate's units per figure unit per hour (bytes per GiB, ...)

    @property
    def divisor(self) -> int:
        return self.per_unit * _SECONDS_PER_HOUR


@dataclass(frozen=True, slots=True, eq=False)
class _Kind:
    """One allocation-based section: its reservations, its figures and response types."""

    reservations: Reservations
    figures: dict[str, _Figure]  # figure name → how it is measured
    responses: _Responses


_COMPUTE = _Kind(
    WORKLOADS,
    {"cpu_core_hours": _Figure("cpu_cores", 1), "ram_gb_hours": _Figure("memory_bytes", GIB)},
    _Responses(
        ComputeUsage,
        AllOrgsComputeUsage,
        ComputeSummary,
        ComputeBucket,
        AgentCompute,
        OtherCompute,
        ComputeOrgUsage,
        ComputePrevious,
        COMPUTE_GROUPS,
    ),
)
_STORAGE = _Kind(
    VOLUMES,
    {"storage_gb_hours": _Figure("size_bytes", GIB)},
    _Responses(
        StorageUsage,
        AllOrgsStorageUsage,
        StorageSummary,
        StorageBucket,
        AgentStorage,
        OtherStorage,
        StorageOrgUsage,
        StoragePrevious,
        STORAGE_GROUPS,
    ),
)


def _every(_: FromClause) -> list[ColumnElement[bool]]:
    return []


def _changes(
    kind: _Kind, shape: Shape, cover: str, *, by_agent: bool, only: Where = _every
) -> Select:
    """The reservation changes in a cover of the window: whole buckets, segments at edges;
    by agent where asked or where the agent filter needs it; of the keys ``only`` keeps."""
    reserved = kind.reservations
    by_agent = by_agent or "agent" in shape.filters
    return reserved.changes_in(
        reserved.changes_by_agent if by_agent else reserved.changes,
        lambda rows, table, tier: in_cover(
            rows,
            table.c.bucket_start,
            cover,
            tier,
            [*shape.where(table), *only(table)],
            shape.reach,
        ),
        lambda rows, segments, time: in_cover(
            rows,
            segments.c[time],
            cover,
            RAW,
            [*shape.where(segments), *only(segments)],
            shape.reach,
        ),
    )


def _in_figure_units(amount: Any, figure: _Figure) -> Any:
    """The exact numeric amount as a float. Rounded first at 300 decimals, which changes
    nothing the bounds on events let through (each figure is at least ~1e-13), so that no
    stored value, however small, can fail the read: a float8 cast of anything under ~1e-308
    is an error, not a zero."""
    return cast(func.round(amount / literal(figure.divisor), _DECIMALS_KEPT), Float)


_DECIMALS_KEPT = 300


def _series(
    kind: _Kind,
    shape: Shape,
    keys: Sequence[str] = (),
    *,
    only: Where = _every,
    exact: bool = False,
    label: str = "",
) -> Select:
    """Per bucket (and key: org_id, agent_id, of those ``only`` keeps): the reservation
    running at its (counted) start for its counted seconds, plus each change inside it for
    its seconds to the bucket's counted end. Without keys, one row per bucket. ``exact``:
    each figure as the exact amount (rate-seconds, numeric), not yet in its unit. ``label``
    names its parts apart from another series' in one statement."""
    rates = kind.reservations.rates
    held = kind.reservations.held
    by_agent = "agent_id" in keys
    changes = _changes(kind, shape, SERIES, by_agent=by_agent, only=only)
    changes = changes.cte(f"{label}window_changes")
    after = _changes(kind, shape, AFTER, by_agent=by_agent, only=only).cte(f"{label}after_changes")
    in_unit = _exactly if exact else _in_figure_units

    def keys_of(relation: Any) -> list[Any]:
        return [relation.c[key] for key in keys]

    position = bucket_index(changes.c.at)
    bucket = BUCKET_STARTS[position].label("bucket")
    bucket_end = func.least(BUCKET_ENDS[position], AS_OF)
    per_bucket = (
        select(
            *keys_of(changes),
            bucket,
            *(func.sum(changes.c[f"{rate}_change"]).label(f"{rate}_change") for rate in rates),
            *(
                func.sum(
                    changes.c[f"{rate}_change"] * seconds(bucket_end - changes.c.at)
                    - changes.c[f"{rate}_moment"]
                ).label(f"{rate}_within")
                for rate in rates
            ),
        )
        .group_by(*keys_of(changes), bucket)
        .subquery("per_bucket")
    )
    # What each key held at counted_from: held now, less every change since.
    parts = union_all(
        select(*keys_of(held), *(held.c[rate] for rate in rates)).where(
            *shape.where(held), *only(held)
        ),
        *(
            select(*keys_of(since), *(-since.c[f"{rate}_change"] for rate in rates))
            for since in (changes, after)
        ),
    ).subquery("parts")
    running = (
        select(
            *keys_of(parts),
            *(func.coalesce(func.sum(parts.c[rate]), 0).label(rate) for rate in rates),
        )
        .group_by(*keys_of(parts))
        .subquery("running")
    )
    buckets = func.unnest(BUCKET_STARTS, BUCKET_ENDS).table_valued("bucket", "end").render_derived()
    counted = func.greatest(
        seconds(func.least(buckets.c.end, AS_OF) - func.greatest(buckets.c.bucket, COUNTED_FROM)),
        0,
    )
    earlier = {"partition_by": keys_of(running), "order_by": buckets.c.bucket, "rows": (None, -1)}
    matched = and_(
        per_bucket.c.bucket == buckets.c.bucket,
        *(per_bucket.c[key] == running.c[key] for key in keys),
    )
    return (
        select(
            *keys_of(running),
            buckets.c.bucket,
            *(
                in_unit(
                    (
                        running.c[figure.rate]
                        + func.coalesce(
                            func.sum(per_bucket.c[f"{figure.rate}_change"]).over(**earlier), 0
                        )
                    )
                    * counted
                    + func.coalesce(per_bucket.c[f"{figure.rate}_within"], 0),
                    figure,
                ).label(name)
                for name, figure in kind.figures.items()
            ),
        )
        .select_from(running.join(buckets, true()))
        .outerjoin(per_bucket, matched)
    )


def _exactly(amount: Any, _: _Figure) -> Any:
    return amount


def _grouped(
    kind: _Kind, shape: Shape, keys: Sequence[str], order: Order, named: Named | None
) -> Select:
    """Groups over time (rows as api.reads.sql says): the keys ranked by their totals over
    the window (as the top agents are), the series of the first TOP keys alone, and the
    others' series the whole series less theirs. Amounts subtract exactly before they
    become figures (floats), so groups and others add up to the series bucket by bucket;
    and the cost is the TOP keys' buckets, not every key's."""
    totals = _totals(kind, shape, by_agent="agent_id" in keys)
    scored = select(*totals.c, totals.c[_ranking(kind)].label("score")).subquery("scored")
    top = first_keys(scored, keys, order, named).cte("top")

    def in_top(table: FromClause) -> list[ColumnElement[bool]]:
        wanted = select(*(top.c[key] for key in keys))
        return [tuple_(*(table.c[key] for key in keys)).in_(wanted)]

    keyed = _series(kind, shape, keys, only=in_top, exact=True, label="top_")
    keyed = keyed.subquery("top_series")
    matched = and_(*(keyed.c[key] == top.c[key] for key in keys))
    per_group = (
        select(
            top.c.rank.label("position"),
            *(top.c[key] for key in keys),
            top.c.name,
            keyed.c.bucket,
            *(keyed.c[name] for name in kind.figures),
        )
        .select_from(keyed.join(top, matched))
        .cte("per_group")
    )
    whole = _series(kind, shape, exact=True).subquery("whole_series")
    signed = union_all(
        select(whole.c.bucket, *(whole.c[name] for name in kind.figures)),
        select(per_group.c.bucket, *(-per_group.c[name] for name in kind.figures)),
    ).subquery("signed")
    key_count = select(func.count()).select_from(scored).scalar_subquery().label("key_count")
    groups = select(
        *(per_group.c[column] for column in ("position", *keys, "name", "bucket")),
        *(
            _in_figure_units(per_group.c[name], figure).label(name)
            for name, figure in kind.figures.items()
        ),
        key_count,
    )
    others = select(
        null().label("position"),
        *(null().label(key) for key in keys),
        null().label("name"),
        signed.c.bucket,
        *(
            _in_figure_units(func.sum(signed.c[name]), figure).label(name)
            for name, figure in kind.figures.items()
        ),
        key_count,
    ).group_by(signed.c.bucket)
    return groups.union_all(others)


def _totals(kind: _Kind, shape: Shape, *, by_agent: bool) -> Subquery:
    """Per org (and agent), each figure over the window, for those that held anything in it:
    the reservation held now over the whole window, less what each change since
    ``counted_from`` did not (yet) hold."""
    keys = ["org_id", "agent_id"] if by_agent else ["org_id"]
    rates = kind.reservations.rates
    held = kind.reservations.held
    window = _changes(kind, shape, TOTALS, by_agent=by_agent).subquery("window_changes")
    after = _changes(kind, shape, AFTER, by_agent=by_agent).subquery("after_changes")
    parts = union_all(
        select(
            *(held.c[key] for key in keys),
            *((held.c[rate] * _WINDOW_SECONDS).label(rate) for rate in rates),
        ).where(*shape.where(held)),
        select(
            *(window.c[key] for key in keys),
            *(
                (
                    window.c[f"{rate}_change"] * seconds(COUNTED_FROM - window.c.at)
                    - window.c[f"{rate}_moment"]
                ).label(rate)
                for rate in rates
            ),
        ),
        select(
            *(after.c[key] for key in keys),
            *((-after.c[f"{rate}_change"] * _WINDOW_SECONDS).label(rate) for rate in rates),
        ),
    ).subquery("parts")
    return (
        select(
            *(parts.c[key] for key in keys),
            *(
                _in_figure_units(func.sum(parts.c[figure.rate]), figure).label(name)
                for name, figure in kind.figures.items()
            ),
        )
        .group_by(*(parts.c[key] for key in keys))
        # Exact (numeric): an agent that held nothing in the window sums to exactly 0.
        .having(func.sum(parts.c[rates[0]]) > 0)
        .subquery()
    )


def _ranking(kind: _Kind) -> str:
    return next(iter(kind.figures))


def _top_agents(kind: _Kind, shape: Shape) -> Compiled:
    per_agent = _totals(kind, shape, by_agent=True)
    joined, name = with_names(per_agent, literal("agent"), per_agent.c.agent_id, shape.reach)
    named = select(per_agent, name).select_from(joined).subquery()
    ranking = _ranking(kind)
    return compile_statement(
        top_n(
            named,
            ["org_id", "agent_id", "name"],
            list(kind.figures),
            lambda item: [
                item.c[ranking].desc(),
                code_point_order(item.c.agent_id),
                code_point_order(item.c.org_id),
            ],
        )
    )


def _by_org(kind: _Kind, shape: Shape) -> Compiled:
    per_org = _totals(kind, shape, by_agent=False)
    ranking = _ranking(kind)
    return compile_statement(
        top_n(
            per_org,
            ["org_id"],
            list(kind.figures),
            lambda item: [item.c[ranking].desc(), code_point_order(item.c.org_id)],
        )
    )


def _span_summary(kind: _Kind, shape: Shape) -> Compiled:
    per_org = _totals(kind, shape, by_agent=False)
    return compile_statement(
        select(
            *(func.coalesce(func.sum(per_org.c[name]), 0.0).label(name) for name in kind.figures)
        )
    )


def _statements(kind: _Kind, shape: Shape) -> list[Compiled]:
    statements = [compile_statement(_series(kind, shape)), _top_agents(kind, shape)]
    return statements + ([_by_org(kind, shape)] if shape.reach is Reach.ALL else [])


_BY_AGENT = ("agent_id",)


def _section(name: str, kind: _Kind, title: str, all_orgs_title: str) -> Section:
    responses = kind.responses

    def sums(row: Any) -> dict[str, float]:
        return {name: float(getattr(row, name)) for name in kind.figures}

    def agent(row: Any, reach: Reach) -> Any:
        holder = AgentOut(
            id=row.agent_id,
            name=row.name or row.agent_id,
            org=row.org_id if reach is Reach.ALL else None,
        )
        return responses.agent(agent=holder, **sums(row))

    def other(row: Any) -> Any:
        return responses.other(count=row.count, **sums(row))

    return Section(
        name=name,
        title=title,
        all_orgs_title=all_orgs_title,
        details="",
        statements=cache(partial(_statements, kind)),
        filters=("agent",),
        group_by=("agent",),
        grouped=partial(_grouped, kind),
        groups=responses.groups,
        bucket=lambda bucket, row: responses.bucket(
            start=bucket.start,
            end=bucket.end,
            partial=bucket.partial,
            **{name: float(getattr(row, name) or 0.0) if row else 0.0 for name in kind.figures},
        ),
        summary=lambda series: responses.summary(
            **{name: sum(getattr(bucket, name) for bucket in series) for name in kind.figures}
        ),
        breakdowns=(Breakdown("top_agents", "other_agents", agent, other),),
        by_org=by_org(responses.org, responses.other, sums),
        usage=responses.usage,
        all_orgs_usage=responses.all_orgs,
        previous=responses.previous,
        span_summary=cache(partial(_span_summary, kind)),
        summary_type=responses.summary,
        keys=_BY_AGENT,
        keyed_series=cache(lambda shape: compile_statement(_series(kind, shape, _BY_AGENT))),
    )


COMPUTE = _section(
    "compute",
    _COMPUTE,
    "CPU core-hours and RAM GB-hours reserved",
    "Compute reserved, all organizations",
)
STORAGE = _section(
    "storage", _STORAGE, "Storage GB-hours provisioned", "Storage provisioned, all organizations"
)
