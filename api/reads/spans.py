"""A section's summary over spans of time, for one organization: the figures a threshold
watches, read by the section's own span summary (the statement of compare=previous), so they
are the figures the usage reads give: rollups, queued rows and raw edges alike."""

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from api.core.filters import Filters
from api.core.windows import Window
from api.reads.fetch import fetch_all
from api.reads.query import Reach, SectionQuery, Shape
from api.reads.sections import SECTION_NAMED

Span = tuple[datetime, datetime]  # [counted from, as of)
_UTC = ZoneInfo("UTC")


def _query(org: str, filters: Filters, span: Span) -> SectionQuery:
    start, as_of = span
    window = Window(
        range="custom",
        bucket="custom",
        width=as_of - start,
        zone=_UTC,
        boundaries=(start, as_of),
        counted_from=start,
        as_of=as_of,
    )
    return SectionQuery(window=window, org=org, top=1, filters=filters)


async def read_spans(
    conn: psycopg.AsyncConnection, org: str, asked: Mapping[tuple[str, Filters], Iterable[Span]]
) -> dict[tuple[str, Filters, Span], dict[str, Any]]:
    """The summary fields of each section, with each filters, over each span: per section and
    filters one snapshot and one round trip. A span may end in the future: an allocation held
    now then counts on to its end."""
    found = {}
    for (section_name, filters), spans in asked.items():
        ordered = sorted(set(spans))
        if not ordered:
            continue
        shape = Shape(Reach.ORG, filters.names)
        statement = SECTION_NAMED[section_name].span_summary(shape)
        runs = [(statement, _query(org, filters, span).span_params()) for span in ordered]
        results = await fetch_all(conn, runs, planned_with_values=shape.planned_with_values)
        for span, rows in zip(ordered, results, strict=True):
            found[(section_name, filters, span)] = rows[0]._asdict()
    return found
