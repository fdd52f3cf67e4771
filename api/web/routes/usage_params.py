"""The query parameters of the usage reads, declared once for every route, and the
dependencies that turn them into a ``SectionQuery``: the window (with its zone), the top-N
size, the filters each section takes, and compare (on the section reads).
"""

import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import unquote_to_bytes

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency, Provide
from litestar.handlers import BaseRouteHandler
from litestar.openapi.spec import Example
from litestar.params import FromPath, QueryParameter

from api.core.events import is_slug
from api.core.filters import FILTERS, MAX_VALUES, FilterError, Filters, parse_filters
from api.core.windows import (
    BUCKET_WIDTHS,
    DEFAULT_ZONE,
    PRESETS,
    Window,
    WindowError,
    check_top,
    resolve_window,
)
from api.reads.query import SectionQuery
from api.storage.keys import ApiKey
from api.storage.partitions import raw_horizon
from api.web.problems import ErrorItem, Problem

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


def _filter_param(description: str) -> Any:
    """A repeatable filter: any of its values matches (its values' schema: api.web.openapi)."""
    return QueryParameter(
        description=f"{description} Repeat for any of several (at most {MAX_VALUES})."
    )


ModelParam = Annotated[list[str] | None, _filter_param("Count only calls to this model.")]
IdentityParam = Annotated[
    list[str] | None,
    _filter_param("Count only this identity's usage: kind:id, kind agent or user (agent:a1)."),
]
AgentParam = Annotated[
    list[str] | None, _filter_param("Count only what this agent holds (its id).")
]
OrgFilterParam = Annotated[
    list[str] | None,
    QueryParameter(
        name="org",
        description=(
            f"Count only this organization. Repeat for any of several (at most {MAX_VALUES})."
        ),
    ),
]


async def llm_filters(
    request: Request, model: ModelParam = None, identity: IdentityParam = None
) -> Filters:
    return _filters(request, {"model": model, "identity": identity})


async def platform_filters(request: Request, identity: IdentityParam = None) -> Filters:
    return _filters(request, {"identity": identity})


async def agent_filters(request: Request, agent: AgentParam = None) -> Filters:
    return _filters(request, {"agent": agent})


async def compare_previous(compare: CompareParam = None) -> bool:
    """Whether the read also reports the previous period (the section reads; not groups)."""
    if compare not in (None, "previous"):
        raise _bad("compare", f"compare must be previous, not {compare!r}")
    return compare == "previous"


async def no_compare() -> bool:
    return False


# A section's filters (its Section.filters) → the dependency that reads them.
FILTER_DEPENDENCIES = {
    ("model", "identity"): Provide(llm_filters),
    ("identity",): Provide(platform_filters),
    ("agent",): Provide(agent_filters),
}


def _filters(request: Request, declared: dict[str, list[str] | None]) -> Filters:
    """The filters of the request: those the section declares (and org, across orgs); any
    other filter given is refused by name."""
    takes = tuple(declared)
    if "org" not in request.path_params:
        takes = (*takes, "org")
    given = {name: request.query_params.getall(name, []) for name in FILTERS}
    given.update({name: values for name, values in declared.items() if values})
    try:
        return parse_filters(given, takes)
    except FilterError as error:
        raise _bad(error.field, str(error)) from None


def _bad(field: str, message: str) -> Problem:
    return Problem(400, message, errors=[ErrorItem(field=field, message=message)])


@dataclass(frozen=True, slots=True)
class Asked:
    """The window and top-N size a read asks for."""

    window: Window
    top: int


async def window_asked(
    request: Request,
    range_: RangeParam = None,
    start: StartParam = None,
    end: EndParam = None,
    bucket: BucketParam = None,
    top: TopParam = 10,
    tz: TzParam = None,
) -> Asked:
    """The window and top of every usage read (its query string already checked)."""
    now = datetime.now(UTC)
    try:
        window = resolve_window(
            now=now,
            range_=range_,
            start=start,
            end=end,
            bucket=bucket,
            tz=DEFAULT_ZONE if tz is None else tz,
            raw_since=raw_horizon(now, request.app.state.raw_retention_days),
        )
        # Litestar's conversion also reads 1e2 and 10.0 as integers; top is digits only.
        if not _DIGITS.fullmatch(request.query_params.get("top", "10")):
            raise WindowError("top", "top must be a whole number between 1 and 100")
        return Asked(window=window, top=check_top(top))
    except WindowError as error:
        raise _bad(error.field, str(error)) from None


async def org_query(
    request: Request,
    org: FromPath[str],
    filters: NamedDependency[Filters],
    comparing: NamedDependency[bool],
    asked: NamedDependency[Asked],
) -> SectionQuery:
    """The query of a one-organization read, once the key may read that organization (that
    the organization exists is checked with the section's own queries)."""
    api_key: ApiKey = request.user
    if not is_slug(org) or (api_key.scope.bound and api_key.org != org):
        raise not_found(org)
    return _query(org, filters, comparing, asked)


def not_found(org: str) -> Problem:
    return Problem(404, f"organization {org!r} not found")


async def all_orgs_query(
    filters: NamedDependency[Filters],
    comparing: NamedDependency[bool],
    asked: NamedDependency[Asked],
    org_filter: OrgFilterParam = None,  # read with the other filters; declared here for docs
) -> SectionQuery:
    return _query(None, filters, comparing, asked)


# What one groups read may answer, and so what it may cost: series points, a bucket of one
# group or of the others each. The rate limit counts requests alike: unbounded, one read
# key's 1,999 buckets at top 100 took 5 s of the server (8.5 MB) and a dozen at once
# slowed every tenant's reads. 10,000: the most buckets (2,000) at top 4, a day of 5-minute
# buckets at top 33; the page's splits (top 8 over at most 300 buckets) ask 2,700 at most.
MAX_GROUP_POINTS = 10_000


def check_group_points(query: SectionQuery) -> None:
    """A groups read answers buckets times (top + 1) points: at most MAX_GROUP_POINTS."""
    buckets = query.window.bucket_count
    points = buckets * (query.top + 1)
    if points > MAX_GROUP_POINTS:
        raise _bad(
            "top",
            f"a groups read answers at most {MAX_GROUP_POINTS:,} points, buckets times (top + 1): "
            f"{buckets:,} buckets at top {query.top} would be {points:,}; ask for top "
            f"{MAX_GROUP_POINTS // buckets - 1} or less here, or for fewer buckets",
        )


def _query(org: str | None, filters: Filters, comparing: bool, asked: Asked) -> SectionQuery:
    return SectionQuery(
        window=asked.window, org=org, top=asked.top, compare=comparing, filters=filters
    )


async def plain_query(connection: ASGIConnection, route_handler: BaseRouteHandler) -> None:
    """A guard on every usage route, before any parameter is read: the query string is
    UTF-8, names only the route's parameters, and gives a single-valued one once (a proxy
    or cache that reads the first of two values would see another request than this one's
    answer). Filters are repeatable. Async: Litestar runs a sync guard in a worker thread."""
    parameters: frozenset[str] | None = route_handler.opt.get("parameters")
    if parameters is None:
        return  # Litestar's own OPTIONS answer, which reads no parameter
    counts: Counter[str] = Counter()
    for pair in connection.scope["query_string"].split(b"&"):
        if not pair:
            continue
        name, _, value = (
            unquote_to_bytes(part.replace(b"+", b" ")) for part in pair.partition(b"=")
        )
        try:
            counts[name.decode("utf-8")] += 1
            value.decode("utf-8")
        except UnicodeDecodeError:
            shown = name.decode("utf-8", "replace")
            raise _bad(shown, f"parameter {shown!r} is not UTF-8 once percent-decoded") from None
    # A filter the route does not take passes here: its filters' check refuses it by name,
    # saying which filters the route takes.
    unknown = sorted(set(counts) - parameters - set(FILTERS))
    if unknown:
        errors = [
            ErrorItem(field=name, message="is not a parameter of this route") for name in unknown
        ]
        known = ", ".join(sorted(parameters))
        raise Problem(
            400,
            f"unknown parameter(s) {', '.join(map(repr, unknown))}; known: {known}",
            errors=errors,
        )
    repeated = sorted(name for name, count in counts.items() if count > 1 and name not in FILTERS)
    if repeated:
        errors = [ErrorItem(field=name, message="is given more than once") for name in repeated]
        raise Problem(
            400,
            f"parameter(s) {', '.join(map(repr, repeated))} given more than once; "
            "only the filters repeat",
            errors=errors,
        )


def route_parameters(filters: tuple[str, ...], *, all_orgs: bool, groups: bool) -> frozenset[str]:
    """The query parameters a usage route takes, for its ``opt["parameters"]``: the window's,
    format, its section's ``filters`` (and org across organizations), then compare on a
    section read or by on a groups read. ``plain_query`` refuses any other, naming these: a
    misspelt parameter (or one of another route) is refused, not silently ignored."""
    across = ("org",) if all_orgs else ()
    return frozenset({*_WINDOW, "format", *filters, *across, "by" if groups else "compare"})


_DIGITS = re.compile("[0-9]+")
_WINDOW = ("range", "start", "end", "bucket", "top", "tz")
