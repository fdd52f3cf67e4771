"""GET usage: one organization's (read or admin key) or all organizations' (admin key)."""

import csv
import hashlib
import io
from functools import partial
from typing import Any

import msgspec
from litestar import Request, Response, Router, get
from litestar.di import NamedDependency, Provide
from litestar.handlers import HTTPRouteHandler

from api.core.negotiation import preferred
from api.reads.engine import Section, answer
from api.reads.fetch import UnknownOrg
from api.reads.query import SectionQuery
from api.reads.sections import SECTIONS
from api.storage.availability import Database
from api.storage.keys import Scope
from api.web.auth import requires
from api.web.openapi import CSV, UsageOperation
from api.web.problems import ErrorItem, Problem, problem_responses
from api.web.routes.usage_params import (
    FILTER_DEPENDENCIES,
    FormatParam,
    all_orgs_query,
    not_found,
    org_query,
)


async def _answer(
    request: Request,
    database: Database,
    section: Section,
    query: SectionQuery,
    output: str | None,
) -> Any:
    media_type = _media_type(request, output)
    try:
        async with database.connection() as conn:
            usage = await answer(section, conn, query)
    except UnknownOrg:
        raise not_found(query.org or "") from None
    headers = {"Cache-Control": "private, no-cache", "Vary": "Accept, Authorization"}
    if media_type == CSV:
        body = _csv(usage.series).encode()
        name = f"usage-{query.org or 'all'}-{section.name}-{query.window.range}.csv"
        headers["Content-Disposition"] = f'attachment; filename="{name}"'
    else:
        body = msgspec.json.encode(usage)
    # The same answer has the same tag: a client that passes the same end revalidates (304).
    headers["ETag"] = f'"{hashlib.blake2b(body, digest_size=16).hexdigest()}"'
    return Response(body, media_type=media_type, headers=headers)


_JSON = "application/json"


def _media_type(request: Request, output: str | None) -> str:
    """JSON or CSV: ``format`` if given, else what Accept prefers (406 if neither)."""
    if output is not None:
        if output not in ("json", "csv"):
            message = f"format must be json or csv, not {output!r}"
            raise Problem(400, message, errors=[ErrorItem(field="format", message=message)])
        return CSV if output == "csv" else _JSON
    chosen = preferred(request.headers.get("accept"), [_JSON, CSV])
    if chosen is None:
        raise Problem(406, f"this route answers {_JSON} or {CSV}; Accept allows neither")
    return chosen


def _csv(series: list[msgspec.Struct]) -> str:
    """The series as RFC 4180 CSV: a header row, then one row per bucket, oldest first."""
    rows = msgspec.to_builtins(series)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    columns = list(series[0].__struct_fields__) if series else []
    writer.writerow(columns)
    for row in rows:
        writer.writerow(_csv_value(row[name]) for name in columns)
    return out.getvalue()


def _csv_value(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


# Every usage route: its problems declared (Litestar would document a 400 as
# application/json) and CSV as the other media type of its 200.
usage_get = partial(
    get,
    responses=problem_responses(400, 401, 403, 404, 406, 429, 503),
    operation_class=UsageOperation,
)
_CSV_NOTE = " With Accept: text/csv or format=csv: the series as CSV."


def _route(section: Section, *, all_orgs: bool) -> HTTPRouteHandler:
    """The GET route of ``section``, for one organization or all of them."""

    async def handler(
        request: Request,
        database: NamedDependency[Database],
        usage_query: NamedDependency[SectionQuery],
        output: FormatParam = None,
    ) -> Any:
        return await _answer(request, database, section, usage_query, output)

    # Named and typed for the OpenAPI document (operation id, response schema).
    handler.__name__ = handler.__qualname__ = section.name
    handler.__annotations__["return"] = section.all_orgs_usage if all_orgs else section.usage
    return usage_get(
        f"/{section.name}",
        summary=section.all_orgs_title if all_orgs else section.title,
        description=_CSV_NOTE if all_orgs else section.details + _CSV_NOTE,
        dependencies={
            "filters": FILTER_DEPENDENCIES[section.filters],
            "usage_query": Provide(all_orgs_query if all_orgs else org_query),
        },
    )(handler)


# One organization's usage: a read key for that organization, or an admin key.
org_usage = Router(
    path="/orgs/{org:str}/usage",
    route_handlers=[_route(section, all_orgs=False) for section in SECTIONS],
    tags=["usage"],
    guards=[requires(Scope.READ, Scope.ADMIN)],
)
# Every organization's usage together, with a by-organization breakdown: admin keys.
all_orgs_usage = Router(
    path="/usage",
    route_handlers=[_route(section, all_orgs=True) for section in SECTIONS],
    tags=["usage (all organizations)"],
    guards=[requires(Scope.ADMIN)],
)
