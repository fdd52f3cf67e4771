"""One function answers any section, from the section's spec: its statements, how a row
becomes a series item, its summary, its breakdowns and its response types.

A section's statements run in one round trip (``common.fetch_all``): first the series
(one row per bucket with usage), then one top-N statement per breakdown (``common.top_n``:
the ranked rows, then the others' row), then, for all organizations, the top-N by org.
Adding a section is writing its spec and listing it in ``sections``.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from sqlalchemy import Select

from api.core.windows import Bucket
from api.reads.fetch import fetch_all, split_top
from api.reads.query import Reach, SectionQuery, Shape
from api.reads.responses import FiltersOut
from api.reads.sql import Named, Order
from api.storage.db import Compiled


@dataclass(frozen=True, slots=True)
class Breakdown:
    """A ranked list and the sum of the rest: the response fields they fill."""

    items: str  # the field of the ranked items ("top_consumers")
    rest: str  # the field of the others' sums ("other_consumers"), null when none
    item: Callable[[Any, Reach], Any]  # a ranked row → its response item
    other: Callable[[Any], Any]  # the others' row → their sums


def by_org(org_usage: type, others: type, sums: Callable[[Any], dict[str, Any]]) -> Breakdown:
    """The all-organizations ranking: ``org_usage`` per organization, ``others`` for the rest,
    each with the section's ``sums`` of the row."""
    return Breakdown(
        "by_org",
        "other_orgs",
        lambda row, _: org_usage(org=row.org_id, **sums(row)),
        lambda row: others(count=row.count, **sums(row)),
    )


@dataclass(frozen=True, slots=True, eq=False)
class Section:
    name: str  # its path: /orgs/{org}/usage/{name}
    title: str  # what it counts: the one-organization route's summary
    all_orgs_title: str  # the all-organizations route's summary
    details: str  # more of what the one-organization route answers ("" if nothing)
    # Its statements for a shape of query: series, each breakdown, by org (all orgs only).
    statements: Callable[[Shape], list[Compiled]]
    filters: tuple[str, ...]  # the filters it takes (api.core.filters), besides org for all orgs
    # Groups over time (api.reads.groups): the dimensions it splits by (besides org for all
    # orgs); the statement of its groups by key columns, tie order and names (rows as
    # ``api.reads.sql`` says, with the figures that ``bucket`` reads); the response, group
    # and others' types.
    group_by: tuple[str, ...]
    grouped: Callable[[Shape, Sequence[str], Order, Named | None], Select]
    groups: tuple[type, type, type]
    bucket: Callable[[Bucket, Any], Any]  # a bucket and its row (None: no usage) → series item
    summary: Callable[[list[Any]], Any]  # the series → its sums
    breakdowns: tuple[Breakdown, ...]
    by_org: Breakdown  # the all-organizations read's ranking of organizations
    usage: type  # the one-organization response
    all_orgs_usage: type  # the all-organizations response
    previous: type  # the summary of the span just before (compare=previous)
    # One row: the summary's figures over a span, from the totals' cover (compare=previous
    # needs no buckets), and the summary type they fill.
    span_summary: Callable[[Shape], Compiled]
    summary_type: type
    # The series per key (the export's usage_hourly, api.export.hourly): the key columns
    # (``keys``), then per bucket the figures ``bucket`` reads; a key with nothing in a
    # bucket has no row there, or one of zeros.
    keys: tuple[str, ...]
    keyed_series: Callable[[Shape], Compiled]


async def answer(section: Section, conn: psycopg.AsyncConnection, query: SectionQuery) -> Any:
    statements = section.statements(query.shape)
    params = query.params()
    runs = [(statement, params) for statement in statements]
    previous = query.previous()
    if previous is not None:
        # The previous span's summary, in the same snapshot and round trip.
        runs.append((section.span_summary(query.shape), previous.span_params()))
    results = await fetch_all(conn, runs, planned_with_values=query.shape.planned_with_values)
    if previous is not None:
        previous_rows = results.pop()
    series = series_of(section, query, results[0])
    fields: dict[str, Any] = {
        "org": query.org,
        "window": query.window_out(),
        "filters": FiltersOut(**query.filters.as_dict()),
        "summary": section.summary(series),
        "series": series,
    }
    if query.compare:
        fields["previous"] = None  # no span before 1970
    if previous is not None:
        fields["previous"] = section.previous(
            start=previous.window.counted_from,
            end=previous.window.as_of,
            summary=section.summary_type(**previous_rows[0]._asdict()),
        )
    breakdowns = section.breakdowns
    if query.reach is Reach.ALL:
        breakdowns = (*breakdowns, section.by_org)
    for breakdown, rows in zip(breakdowns, results[1:], strict=True):
        ranked, others = split_top(rows)
        fields[breakdown.items] = [breakdown.item(row, query.reach) for row in ranked]
        fields[breakdown.rest] = None if others is None else breakdown.other(others)
    response = section.usage if query.reach is Reach.ORG else section.all_orgs_usage
    return response(**fields)


def series_of(section: Section, query: SectionQuery, rows: list[Any]) -> list[Any]:
    """Every bucket of the query's window, from a series statement's rows (one per bucket
    with usage)."""
    per_bucket = {row.bucket: row for row in rows}
    return [section.bucket(b, per_bucket.get(b.start)) for b in query.window.buckets()]
