"""Reservation changes of workloads and volumes, kept per tier like the counted rollups.

A segment reserves its rate (cores, bytes) over ``[start, end)``: it changes its agent's
reservation by +rate at its start and by -rate at its end (none while open). The rollups
(api.storage.schema) hold, per bucket, the sum of the changes and of each change times its seconds
after the bucket start; ``*_held`` holds the sum of all changes. From these, reads integrate
any window without touching the segments inside it (api.reads.allocated).

They are maintained where segments are: the statement that removes an object's segments
takes their changes back and adds those of the segments rebuilt in their place.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import (
    CTE,
    ColumnElement,
    FromClause,
    Numeric,
    Select,
    Table,
    cast,
    extract,
    func,
    literal,
    select,
    union_all,
)

from api.core.buckets import origin_of
from api.core.tiers import TIERS
from api.storage.rollups import adding
from api.storage.schema import (
    VOLUME_RATES,
    WORKLOAD_RATES,
    volume_changes,
    volume_changes_by_agent,
    volume_segments,
    volumes_held,
    workload_changes,
    workload_changes_by_agent,
    workload_segments,
    workloads_held,
)

# Narrow a select of a segments relation by one of its time columns ("start_time",
# "end_time"), or of a rollup table of a tier: the rows a read needs (conditions or joins).
Narrow = Callable[[Select, FromClause, str], Select]
NarrowTier = Callable[[Select, Table, str], Select]


def seconds(interval: Any) -> ColumnElement:
    """An interval in seconds, exactly (numeric: microseconds included)."""
    return extract("epoch", interval)


@dataclass(frozen=True, slots=True, eq=False)
class Reservations:
    segments: Table
    rates: list[str]
    changes: dict[str, Table]  # tier → per organization
    changes_by_agent: dict[str, Table]  # tier → per organization and agent
    held: Table

    @property
    def tables(self) -> list[Table]:
        """Every table derived from the events: the segments and their changes' rollups."""
        return [self.segments, *self.change_rollups, self.held]

    @property
    def change_rollups(self) -> list[Table]:
        return [*self.changes.values(), *self.changes_by_agent.values()]

    @property
    def measures(self) -> list[str]:
        """The change rollups' measures: per rate, its change and its moment."""
        return [f"{rate}_{part}" for rate in self.rates for part in ("change", "moment")]

    def changes_of(
        self, segments: FromClause, sign: int = 1, narrow: Narrow | None = None
    ) -> Select:
        """The segments' changes as rows: ``at``, org_id, agent_id, per rate its change and
        moment (0: ``at`` is the change's own time). ``sign`` -1 takes them back."""

        def rows(time: str, direction: int) -> Select:
            changes = select(
                segments.c[time].label("at"),
                segments.c.org_id,
                segments.c.agent_id,
                *(
                    (literal(sign * direction) * cast(segments.c[rate], Numeric)).label(
                        f"{rate}_change"
                    )
                    for rate in self.rates
                ),
                *(cast(literal(0), Numeric).label(f"{rate}_moment") for rate in self.rates),
            ).where(segments.c[time].is_not(None))
            return narrow(changes, segments, time) if narrow is not None else changes

        return union_all(rows("start_time", 1), rows("end_time", -1))

    def changes_in(
        self, tables: dict[str, Table], narrow_tier: NarrowTier, narrow_raw: Narrow
    ) -> Select:
        """Rows of ``changes_of`` form from whole buckets of ``tables`` (``at`` is the bucket
        start, the moment is relative to it) and from the segments themselves."""
        by_agent = "agent_id" in tables[next(iter(tables))].c
        columns = (["org_id", "agent_id"] if by_agent else ["org_id"]) + self.measures
        raw = self.changes_of(self.segments, narrow=narrow_raw).subquery()
        return union_all(
            *(
                narrow_tier(
                    select(table.c.bucket_start.label("at"), *(table.c[name] for name in columns)),
                    table,
                    tier,
                )
                for tier, table in tables.items()
            ),
            select(raw.c.at, *(raw.c[name] for name in columns)),
        )

    def maintained(self, changed: FromClause) -> list[CTE]:
        """Upserts adding the changes in ``changed`` (rows of ``changes_of``) to every tier
        of both families and to the held reservations, in key order."""
        upserts = [
            adding(table, self._aggregated(changed, TIERS[tier], dimensions), self.measures)
            for dimensions, tables in (([], self.changes), (["agent_id"], self.changes_by_agent))
            for tier, table in tables.items()
        ]
        keys = [changed.c.org_id, changed.c.agent_id]
        sums = [func.sum(changed.c[f"{rate}_change"]).label(rate) for rate in self.rates]
        held = select(*keys, *sums).group_by(*keys).order_by(*keys)
        upserts.append(adding(self.held, held, self.rates))
        return upserts

    def _aggregated(self, changed: FromClause, width: timedelta, dimensions: list[str]) -> Select:
        bucket = func.date_bin(literal(width), changed.c.at, literal(origin_of(width)))
        bucket = bucket.label("bucket_start")
        keys = [changed.c.org_id, bucket, *(changed.c[name] for name in dimensions)]
        return (
            select(
                *keys,
                *(
                    measure
                    for rate in self.rates
                    for measure in (
                        func.sum(changed.c[f"{rate}_change"]).label(f"{rate}_change"),
                        func.sum(
                            changed.c[f"{rate}_moment"]
                            + changed.c[f"{rate}_change"] * seconds(changed.c.at - bucket)
                        ).label(f"{rate}_moment"),
                    )
                ),
            )
            .group_by(*keys)
            .order_by(*keys)
        )


WORKLOADS = Reservations(
    workload_segments, WORKLOAD_RATES, workload_changes, workload_changes_by_agent, workloads_held
)
VOLUMES = Reservations(
    volume_segments, VOLUME_RATES, volume_changes, volume_changes_by_agent, volumes_held
)
ALL = (WORKLOADS, VOLUMES)
