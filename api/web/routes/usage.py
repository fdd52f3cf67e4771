"""GET usage: one organization's (read or admin key) or all organizations' (admin key)."""

import csv
import hashlib
import io
from collections.abc import Awaitable, Callable, Iterable
from functools import partial
from typing import Annotated, Any

import msgspec
import psycopg
from litestar import Request, Response, Router, get
from litestar.di import NamedDependency, Provide
from litestar.handlers import HTTPRouteHandler
from litestar.params import QueryParameter

from api.core.negotiation import preferred
from api.reads.engine import Section, answer
from api.reads.fetch import UnknownOrg
from api.reads.groups import answer_groups, dimensions
from api.reads.query import Reach, SectionQuery
from api.reads.sections import SECTIONS
from api.storage.availability import Database
from api.storage.keys import Scope
from api.web.auth import requires
from api.web.openapi import CSV, UsageOperation
from api.web.problems import ErrorItem, Problem, problem_responses
from api.web.routes.usage_params import (
    FILTER_DEPENDENCIES,
    MAX_GROUP_POINTS,
    FormatParam,
    all_orgs_query,
    check_group_points,
    compare_previous,
    no_compare,
    not_found,
    org_query,
    plain_query,
    route_parameters,
    window_asked,
)


async def _respond(
    request: Request,
    database: Database,
    query: SectionQuery,
    output: str | None,
    read: Callable[[psycopg.AsyncConnection], Awaitable[Any]],
    as_csv: Callable[[Any], str],
    name: str,
) -> Response:
    """The answer ``read`` gives, as JSON or (``as_csv``) as CSV, tagged by its content."""
    media_type = _media_type(request, output)
    try:
        async with database.connection() as conn:
            usage = await read(conn)
    except UnknownOrg:
        raise not_found(query.org or "") from None
    headers = {"Cache-Control": "private, no-cache", "Vary": "Accept, Authorization"}
    if media_type == CSV:
        body = as_csv(usage).encode()
        zone = query.window.zone.key.replace("/", "-")
        filename = f"usage-{query.org or 'all'}-{name}-{query.window.range}-{zone}.csv"
        headers["Content-Disposition"] = f'attachment; filename="{filename}"'
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


def _csv(header: list[str], rows: Iterable[Iterable[Any]]) -> str:
    """RFC 4180 CSV: the header row, then the rows."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([_csv_value(value) for value in row] for row in rows)
    return out.getvalue()


def _series_csv(usage: Any) -> str:
    """The series: one row per bucket, oldest first."""
    series = msgspec.to_builtins(usage.series)
    columns = list(usage.series[0].__struct_fields__) if usage.series else []
    return _csv(columns, ([bucket[name] for name in columns] for bucket in series))


def _groups_csv(usage: Any) -> str:
    """One row per group per bucket: the bucket, the group's key, its figures; the others
    last, their key empty and their count given."""
    groups = msgspec.to_builtins(usage.groups)
    other = msgspec.to_builtins(usage.other)
    series = (groups[0] if groups else other or {"series": []})["series"]
    figures = [name for name in series[0] if name not in _BUCKET] if series else []
    keys = _KEY_COLUMNS[usage.by] + (["org"] if usage.org is None and usage.by != "org" else [])
    rows = [
        [
            *(bucket[name] for name in _BUCKET),
            *_key_values(group["key"], keys, usage.by),
            *(bucket[name] for name in figures),
            "",
        ]
        for group in groups
        for bucket in group["series"]
    ]
    if other is not None:
        rows += [
            [
                *(bucket[name] for name in _BUCKET),
                *([""] * len(keys)),
                *(bucket[name] for name in figures),
                other["count"],
            ]
            for bucket in other["series"]
        ]
    return _csv([*_BUCKET, *keys, *figures, "count"], rows)


_BUCKET = ["start", "end", "partial"]
# A group key's columns in CSV (cross-org identities and agents add org).
_KEY_COLUMNS = {
    "model": ["model"],
    "identity": ["identity_kind", "identity_id", "identity_name"],
    "agent": ["agent_id", "agent_name"],
    "org": ["org"],
}


def _key_values(key: dict[str, Any], columns: list[str], by: str) -> list[Any]:
    if by in ("model", "org"):
        return [key[by]]
    holder = key[by]
    values = {f"{by}_{field}": value for field, value in holder.items() if field != "org"}
    values["org"] = holder.get("org")
    return [values[column] for column in columns]


def _csv_value(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        # Names are the callers' text: a spreadsheet opening the file would run one that
        # looks like a formula. A leading ' makes it text (OWASP's CSV injection advice).
        return "'" + value
    return value


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


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
        return await _respond(
            request,
            database,
            usage_query,
            output,
            partial(answer, section, query=usage_query),
            _series_csv,
            section.name,
        )

    # Named and typed for the OpenAPI document (operation id, response schema).
    handler.__name__ = handler.__qualname__ = section.name
    handler.__annotations__["return"] = section.all_orgs_usage if all_orgs else section.usage
    return usage_get(
        f"/{section.name}",
        summary=section.all_orgs_title if all_orgs else section.title,
        description=_CSV_NOTE if all_orgs else section.details + _CSV_NOTE,
        dependencies=_dependencies(section, all_orgs=all_orgs, comparing=compare_previous),
        opt={"parameters": route_parameters(section.filters, all_orgs=all_orgs, groups=False)},
    )(handler)


def _groups_route(section: Section, *, all_orgs: bool) -> HTTPRouteHandler:
    """The GET route of ``section`` split by group, for one organization or all."""
    reach = Reach.ALL if all_orgs else Reach.ORG
    allowed = dimensions(section, reach)

    async def handler(
        request: Request,
        database: NamedDependency[Database],
        usage_query: NamedDependency[SectionQuery],
        by: str,
        output: FormatParam = None,
    ) -> Any:
        if by not in allowed:
            message = f"by must be one of {', '.join(allowed)} for {section.name}, not {by!r}"
            raise Problem(400, message, errors=[ErrorItem(field="by", message=message)])
        check_group_points(usage_query)
        return await _respond(
            request,
            database,
            usage_query,
            output,
            partial(answer_groups, section, query=usage_query, by=by),
            _groups_csv,
            f"{section.name}-by-{by}",
        )

    handler.__name__ = handler.__qualname__ = f"{section.name}_groups"
    handler.__annotations__["return"] = section.groups[0]
    handler.__annotations__["by"] = Annotated[
        str,
        QueryParameter(
            description="The dimension to split the series by.",
            schema_extra={"enum": list(allowed)},
        ),
    ]
    return usage_get(
        f"/{section.name}/groups",
        summary=f"{section.all_orgs_title if all_orgs else section.title}, by group over time",
        description=(
            "The section's series split into its top groups (by its ranking figure) and the "
            "others; for every bucket they sum to the section's series item. At most "
            f"{MAX_GROUP_POINTS:,} points, buckets times (top + 1): 400 beyond. "
            "With Accept: text/csv or format=csv: one row per group per bucket."
        ),
        dependencies=_dependencies(section, all_orgs=all_orgs, comparing=no_compare),
        opt={"parameters": route_parameters(section.filters, all_orgs=all_orgs, groups=True)},
    )(handler)


def _dependencies(
    section: Section, *, all_orgs: bool, comparing: Callable[..., Awaitable[bool]]
) -> dict[str, Provide]:
    """A usage route's query: its window and top, the section's filters, compare or not."""
    return {
        "asked": Provide(window_asked),
        "filters": FILTER_DEPENDENCIES[section.filters],
        "comparing": Provide(comparing),
        "usage_query": Provide(all_orgs_query if all_orgs else org_query),
    }


def _routes(*, all_orgs: bool) -> list[HTTPRouteHandler]:
    return [
        route(section, all_orgs=all_orgs)
        for section in SECTIONS
        for route in (_route, _groups_route)
    ]


# One organization's usage: a read or manage key for that organization, or an admin key.
org_usage = Router(
    path="/orgs/{org:str}/usage",
    route_handlers=_routes(all_orgs=False),
    tags=["usage"],
    guards=[requires(Scope.READ, Scope.MANAGE, Scope.ADMIN), plain_query],
)
# Every organization's usage together, with a by-organization breakdown: admin keys.
all_orgs_usage = Router(
    path="/usage",
    route_handlers=_routes(all_orgs=True),
    tags=["usage (all organizations)"],
    guards=[requires(Scope.ADMIN), plain_query],
)
