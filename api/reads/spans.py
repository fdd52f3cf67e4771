"""A section's summary over spans of time, for one organization: the figures a threshold
watches, read by the section's own span summary (the statement of compare=previous), so they
are the figures the usage reads give: rollups, queued rows and raw edges alike."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from api.core.filters import Filters
from api.core.windows import Window
from api.reads.engine import Section
from api.reads.fetch import fetch_all
from api.reads.query import Reach, SectionQuery, Shape

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


async def span_summaries(
    conn: psycopg.AsyncConnection,
    section: Section,
    org: str,
    filters: Filters,
    spans: Sequence[Span],
) -> list[dict[str, Any]]:
    """The section's summary fields over each span, in one snapshot and one round trip. A span
    may end in the future: an allocation held now then counts on to its end."""
    if not spans:
        return []
    shape = Shape(Reach.ORG, filters.names)
    statement = section.span_summary(shape)
    runs = [(statement, _query(org, filters, span).span_params()) for span in spans]
    results = await fetch_all(conn, runs, planned_with_values=shape.planned_with_values)
    return [rows[0]._asdict() for rows in results]
