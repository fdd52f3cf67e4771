"""GET usage: one organization's (read or admin key) or all organizations' (admin key)."""

import csv
import hashlib
import io
import re
from datetime import UTC, datetime
from functools import partial
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, Router, get
from litestar.di import NamedDependency, Provide
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.spec import Example
from litestar.params import FromPath, QueryParameter

from api.core.events import is_slug
from api.core.negotiation import preferred
from api.core.windows import (
    BUCKET_WIDTHS,
    DEFAULT_ZONE,
    PRESETS,
    WindowError,
    check_top,
    resolve_window,
)
from api.reads.engine import Section, answer
from api.reads.fetch import UnknownOrg
from api.reads.query import SectionQuery
from api.reads.sections import SECTIONS
from api.storage.availability import Database
from api.storage.keys import ApiKey, Scope
from api.web.auth import requires
from api.web.openapi import CSV, UsageOperation
from api.web.problems import ErrorItem, Problem, problem_responses


def _window_query(
    request: Request,
    org: str | None,
    range_: str | None,
    start: str | None,
    end: str | None,
    bucket: str | None,
    top: int,
    compare: str | None,
    tz: str | None,
) -> SectionQuery:
    unknown = sorted(set(request.query_params) - _PARAMETERS)
    if unknown:
        errors = [
            ErrorItem(field=name, message="is not a parameter of this route") for name in unknown
        ]
        known = ", ".join(sorted(_PARAMETERS))
        raise Problem(
            400,
            f"unknown parameter(s) {', '.join(map(repr, unknown))}; known: {known}",
            errors=errors,
        )
    try:
        window = resolve_window(
            now=datetime.now(UTC),
            range_=range_,
            start=start,
            end=end,
            bucket=bucket,
            tz=DEFAULT_ZONE if tz is None else tz,
        )
        # Litestar's conversion also reads 1e2 and 10.0 as integers; top is digits only.
        if not _DIGITS.fullmatch(request.query_params.get("top", "10")):
            raise WindowError("top", "top must be a whole number between 1 and 100")
        if compare not in (None, "previous"):
            raise WindowError("compare", f"compare must be previous, not {compare!r}")
        return SectionQuery(
            window=window, org=org, top=check_top(top), compare=compare == "previous"
        )
    except WindowError as error:
        raise Problem(
            400, str(error), errors=[ErrorItem(field=error.field, message=str(error))]
        ) from None


_DIGITS = re.compile("[0-9]+")
# A misspelt parameter (or one of another route) is refused, not silently ignored.
_PARAMETERS = {"range", "start", "end", "bucket", "top", "format", "compare", "tz"}

# The window parameters, declared once for every usage route.
RangeParam = Annotated[
    str | None,
    QueryParameter(
        name="range",
        description="A preset: 24h (default), 7d or 30d. Not together with start.",
        schema_extra={"enum": list(PRESETS)},
    ),
]
StartParam = Annotated[
    str | None,
    QueryParameter(
        description="Start of a custom window: RFC 3339 with offset; needs end.",
        schema_extra={"format": "date-time"},
    ),
]
EndParam = Annotated[
    str | None,
    QueryParameter(
        description="End of a custom window, or a preset's snapshot time (default now).",
        schema_extra={"format": "date-time"},
    ),
]
BucketParam = Annotated[
    str | None,
    QueryParameter(
        description="Bucket width; picked automatically when omitted.",
        schema_extra={"enum": list(BUCKET_WIDTHS)},
    ),
]
TopParam = Annotated[
    int, QueryParameter(description="Size of top-N breakdowns, 1..100.", ge=1, le=100)
]
CompareParam = Annotated[
    str | None,
    QueryParameter(
        description="previous: also the summary over the span of equal length just before.",
        schema_extra={"enum": ["previous"]},
    ),
]
TzParam = Annotated[
    str | None,
    QueryParameter(
        description=(
            "The IANA time zone whose wall clock bucket boundaries follow (default UTC): "
            "days start at local midnight, 23 or 25 hours long across a daylight-saving change."
        ),
        examples=[Example(value="Asia/Kolkata"), Example(value="America/New_York")],
    ),
]
FormatParam = Annotated[
    str | None,
    QueryParameter(
        name="format",
        # Not in the document: it cannot say that format=csv changes the answer's type, and
        # generated clients would read CSV as JSON. Accept: text/csv says it (and is there).
        include_in_schema=False,
    ),
]


async def org_query(
    request: Request,
    org: FromPath[str],
    range_: RangeParam = None,
    start: StartParam = None,
    end: EndParam = None,
    bucket: BucketParam = None,
    top: TopParam = 10,
    compare: CompareParam = None,
    tz: TzParam = None,
) -> SectionQuery:
    """The query of a one-organization read, once the key may read that organization (that
    the organization exists is checked with the section's own queries)."""
    api_key: ApiKey = request.user
    if not is_slug(org) or (api_key.scope is Scope.READ and api_key.org != org):
        raise _not_found(org)
    return _window_query(request, org, range_, start, end, bucket, top, compare, tz)


def _not_found(org: str) -> Problem:
    return Problem(404, f"organization {org!r} not found")


async def all_orgs_query(
    request: Request,
    range_: RangeParam = None,
    start: StartParam = None,
    end: EndParam = None,
    bucket: BucketParam = None,
    top: TopParam = 10,
    compare: CompareParam = None,
    tz: TzParam = None,
) -> SectionQuery:
    return _window_query(request, None, range_, start, end, bucket, top, compare, tz)


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
        raise _not_found(query.org or "") from None
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
    )(handler)


# One organization's usage: a read key for that organization, or an admin key.
org_usage = Router(
    path="/orgs/{org:str}/usage",
    route_handlers=[_route(section, all_orgs=False) for section in SECTIONS],
    tags=["usage"],
    guards=[requires(Scope.READ, Scope.ADMIN)],
    dependencies={"usage_query": Provide(org_query)},
)
# Every organization's usage together, with a by-organization breakdown: admin keys.
all_orgs_usage = Router(
    path="/usage",
    route_handlers=[_route(section, all_orgs=True) for section in SECTIONS],
    tags=["usage (all organizations)"],
    guards=[requires(Scope.ADMIN)],
    dependencies={"usage_query": Provide(all_orgs_query)},
)
