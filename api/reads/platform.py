"""The platform section: threads created and messages sent per bucket."""

from typing import Any

import psycopg
from sqlalchemy import select

from api.reads.common import (
    SERIES,
    TOTALS,
    Reach,
    SectionQuery,
    bucket_of,
    code_point_order,
    covered,
    fetch_all,
    split_top,
    top_n,
    total,
)
from api.reads.shapes import (
    AllOrgsPlatformUsage,
    OtherPlatformOrgs,
    PlatformBucket,
    PlatformOrgUsage,
    PlatformSummary,
    PlatformUsage,
)
from api.storage.db import Compiled, compile_statement
from api.storage.rollups import PLATFORM_TOTALS
from api.storage.schema import PLATFORM_MEASURES

_MEASURES = PLATFORM_MEASURES


def _statements(reach: Reach) -> list[Compiled]:
    facts = covered(SERIES, reach, PLATFORM_TOTALS)
    bucket = bucket_of(facts.c.at).label("bucket")
    series = select(bucket, *(total(facts.c[name]).label(name) for name in _MEASURES)).group_by(
        bucket
    )
    if reach is Reach.ORG:
        return [compile_statement(series)]
    facts = covered(TOTALS, reach, PLATFORM_TOTALS)
    per_org = (
        select(facts.c.org_id, *(total(facts.c[name]).label(name) for name in _MEASURES))
        .group_by(facts.c.org_id)
        .subquery()
    )
    by_org = top_n(
        per_org,
        ["org_id"],
        _MEASURES,
        lambda item: [
            item.c.messages_sent.desc(),
            item.c.threads_created.desc(),
            code_point_order(item.c.org_id),
        ],
    )
    return [compile_statement(series), compile_statement(by_org)]


_STATEMENTS = {reach: _statements(reach) for reach in Reach}


async def platform_usage(conn: psycopg.AsyncConnection, query: SectionQuery) -> PlatformUsage:
    results = await fetch_all(conn, _STATEMENTS[query.reach], query.params())
    per_bucket = {row.bucket: row for row in results[0]}
    series = [
        PlatformBucket(
            start=bucket.start,
            partial=bucket.partial,
            **{name: getattr(row, name) if row else 0 for name in _MEASURES},
        )
        for bucket in query.window.buckets()
        for row in [per_bucket.get(bucket.start)]
    ]
    summary = PlatformSummary(
        threads_created=sum(b.threads_created for b in series),
        messages_sent=sum(b.messages_sent for b in series),
    )
    fields: dict[str, Any] = {
        "org": query.org,
        "window": query.window_out(),
        "summary": summary,
        "series": series,
    }
    if query.reach is Reach.ORG:
        return PlatformUsage(**fields)
    orgs, others = split_top(results[1])
    return AllOrgsPlatformUsage(
        **fields,
        by_org=[
            PlatformOrgUsage(org=row.org_id, **{name: getattr(row, name) for name in _MEASURES})
            for row in orgs
        ],
        other_orgs=None
        if others is None
        else OtherPlatformOrgs(
            count=others.count, **{name: getattr(others, name) for name in _MEASURES}
        ),
    )
