"""Usage by group over time: a section's series split by one dimension (model, identity,
agent, org) into its top groups and the others, in one statement (the section's
``grouped``), so that every bucket's groups and others sum to the section's series item.
"""

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, partial
from typing import Any

import psycopg
from sqlalchemy import ColumnElement, FromClause, Subquery, literal

from api.reads.engine import Section, series_of
from api.reads.fetch import fetch_all
from api.reads.query import Reach, SectionQuery, Shape
from api.reads.responses import AgentOut, FiltersOut, GroupKey, IdentityOut
from api.reads.sql import Order, code_point_order, with_names
from api.storage.db import Compiled, compile_statement


@dataclass(frozen=True, slots=True, eq=False)
class Grouping:
    """One dimension to group by: its key's columns in a keyed series, the tie order (by key
    ascending), the key in a response, and where its name comes from."""

    keys: tuple[str, ...]
    order: Order
    key: Callable[[Any, Reach], GroupKey]
    named: Callable[[Subquery, Reach], tuple[FromClause, ColumnElement]] | None = None


def _named(kind_column: str | None, id_column: str) -> Callable:
    """The identity's name, joined by org, kind (``kind_column``; none: agents) and id."""

    def join(scored: Subquery, reach: Reach) -> tuple[FromClause, ColumnElement]:
        kind = scored.c[kind_column] if kind_column else literal("agent")
        return with_names(scored, kind, scored.c[id_column], reach)

    return join


def _org_of(row: Any, reach: Reach) -> str | None:
    return row.org_id if reach is Reach.ALL else None


BY_MODEL = Grouping(
    ("model",), lambda s: [code_point_order(s.c.model)], lambda row, _: GroupKey(model=row.model)
)
BY_IDENTITY = Grouping(
    ("org_id", "identity_kind", "identity_id"),
    lambda s: [
        code_point_order(s.c.identity_id),
        s.c.identity_kind,
        code_point_order(s.c.org_id),
    ],
    lambda row, reach: GroupKey(
        identity=IdentityOut(
            kind=row.identity_kind,
            id=row.identity_id,
            name=row.name or row.identity_id,
            org=_org_of(row, reach),
        )
    ),
    _named("identity_kind", "identity_id"),
)
BY_AGENT = Grouping(
    ("org_id", "agent_id"),
    lambda s: [code_point_order(s.c.agent_id), code_point_order(s.c.org_id)],
    lambda row, reach: GroupKey(
        agent=AgentOut(id=row.agent_id, name=row.name or row.agent_id, org=_org_of(row, reach))
    ),
    _named(None, "agent_id"),
)
BY_ORG = Grouping(
    ("org_id",), lambda s: [code_point_order(s.c.org_id)], lambda row, _: GroupKey(org=row.org_id)
)
GROUPINGS = {"model": BY_MODEL, "identity": BY_IDENTITY, "agent": BY_AGENT, "org": BY_ORG}


def dimensions(section: Section, reach: Reach) -> tuple[str, ...]:
    """What ``section`` can be grouped by: its own dimensions, and org across orgs."""
    return section.group_by + (("org",) if reach is Reach.ALL else ())


@cache
def _statement(section: Section, shape: Shape, by: str) -> Compiled:
    grouping = GROUPINGS[by]
    named = grouping.named
    if named is not None:
        named = partial(named, reach=shape.reach)
    return compile_statement(section.grouped(shape, grouping.keys, grouping.order, named))


async def answer_groups(
    section: Section, conn: psycopg.AsyncConnection, query: SectionQuery, by: str
) -> Any:
    grouping = GROUPINGS[by]
    (rows,) = await fetch_all(
        conn,
        [(_statement(section, query.shape, by), query.params())],
        planned_with_values=query.shape.planned_with_values,
    )
    key_count = max((row.key_count for row in rows), default=0)
    per_group: dict[int | None, list[Any]] = {}
    for row in rows:
        per_group.setdefault(row.position, []).append(row)
    response, group, others = section.groups
    groups = []
    for position in sorted(p for p in per_group if p is not None):
        group_rows = per_group[position]
        series = series_of(section, query, group_rows)
        groups.append(
            group(
                key=grouping.key(group_rows[0], query.reach),
                summary=section.summary(series),
                series=series,
            )
        )
    other = None
    if None in per_group and key_count > len(groups):
        series = series_of(section, query, per_group[None])
        summary = section.summary(series)
        other = others(count=key_count - len(groups), summary=summary, series=series)
    return response(
        org=query.org,
        window=query.window_out(),
        filters=FiltersOut(**query.filters.as_dict()),
        by=by,
        groups=groups,
        other=other,
    )
