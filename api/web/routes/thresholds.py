"""An organization's usage thresholds (DESIGN §10): created, listed, read and deleted; a
test webhook sent on request; the signing secret rotated.

Managed with an admin key or a manage key of the organization; a read key of the
organization may list and read them, their webhook URLs cut to scheme and host (such URLs are
often credentials). A signing secret is in the answer that made it only: the creation's or
the rotation's.
"""

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import msgspec
import psycopg
from litestar import Controller, Request, Response, delete, get, post, route
from litestar.di import NamedDependency
from litestar.enums import HttpMethod
from litestar.params import FromPath, JSONBody, QueryParameter
from msgspec import UNSET, UnsetType

from api.alerts.delivery import send_test
from api.alerts.status import Standing, standings
from api.core.events import is_slug
from api.core.filters import FilterError, parse_filters
from api.core.signatures import ROTATION_GRACE
from api.core.webhook_targets import (
    RefusedTarget,
    checked_addresses,
    literal_address,
    parse_target,
)
from api.core.windows import WindowError, parse_zone
from api.reads.sections import COUNTED_MEASURES, SECTIONS, figure
from api.storage.availability import Database
from api.storage.keys import ApiKey, Scope
from api.storage.thresholds import (
    Attempt,
    Delivery,
    Threshold,
    TooManyThresholds,
    WebhookTest,
    create_threshold,
    delete_threshold,
    find_signed_threshold,
    find_threshold,
    list_deliveries,
    list_tests,
    list_thresholds,
    record_test,
    rotate_secret,
)
from api.web.auth import requires
from api.web.bodies import named, strict_body
from api.web.problems import ErrorItem, Problem, problem_responses
from api.web.routes.allowed_methods import allowing
from api.web.routes.usage_params import not_found

# Each section and the summary fields a threshold may watch.
MEASURES = {
    section.name: tuple(field.name for field in msgspec.structs.fields(section.summary_type))
    for section in SECTIONS
}
_FILTERS = {section.name: section.filters for section in SECTIONS}
_THRESHOLD_ID = re.compile(r"thr_[0-9a-f]{16}")
Section = Literal["llm", "compute", "storage", "platform"]
Period = Literal["day", "week", "month"]
Measure = Literal[
    "input_tokens",
    "cached_tokens",
    "output_tokens",
    "successful_requests",
    "failed_requests",
    "cpu_core_hours",
    "ram_gb_hours",
    "storage_gb_hours",
    "threads_created",
    "messages_sent",
]


class ThresholdFilters(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Which usage counts (DESIGN §4.1), as the section's reads take them."""

    model: list[str] | UnsetType = UNSET
    identity: list[str] | UnsetType = UNSET
    agent: list[str] | UnsetType = UNSET


class ThresholdIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    section: Section
    measure: str  # one of the section's (checked below, naming them)
    period: Period
    tz: str = "UTC"
    limit: Annotated[float, msgspec.Meta(gt=0)]
    filters: ThresholdFilters | None = None
    url: str


_LIMIT = "Above what the period's figure crosses: an integer for the measures that count."
_SO_FAR = "The figure from the period's start to now: an integer for the measures that count."
_FOUND = "The period's figure when it crossed: an integer for the measures that count."


class CurrentPeriod(msgspec.Struct, frozen=True, kw_only=True):
    """The period holding now, and its figure from its start to now."""

    start: datetime
    end: datetime
    value: Annotated[float, msgspec.Meta(description=_SO_FAR)]


_URL = (
    "Where the webhooks go: the whole URL for admin and manage keys; its scheme and host "
    "only (https://hooks.example.com) for read keys, since such a URL is often a credential."
)


class ThresholdOut(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    org: str
    section: Section
    measure: Measure
    period: Period
    tz: str
    limit: Annotated[float, msgspec.Meta(description=_LIMIT)]
    filters: ThresholdFilters
    url: Annotated[str, msgspec.Meta(description=_URL)]
    created_at: datetime
    current_period: CurrentPeriod


class CreatedThreshold(ThresholdOut, frozen=True, kw_only=True):
    # Shown once: the key of the webhooks' signatures (Standard Webhooks, whsec_...).
    secret: str


class ThresholdList(msgspec.Struct, frozen=True, kw_only=True):
    thresholds: list[ThresholdOut]


class PeriodOut(msgspec.Struct, frozen=True, kw_only=True):
    start: datetime
    end: datetime


class DeliveryOut(msgspec.Struct, frozen=True, kw_only=True):
    """A crossing: the period, its figure when detected, and the attempts to deliver it."""

    webhook_id: str  # the same on every attempt: receivers dedupe on it
    period: PeriodOut
    value: Annotated[float, msgspec.Meta(description=_FOUND)]
    detected_at: datetime
    # delivered; pending (another attempt at next_attempt_at); failed (retried for a day)
    state: Literal["delivered", "pending", "failed"]
    delivered_at: datetime | None
    next_attempt_at: datetime | None
    attempts: list[Attempt]


class DeliveryList(msgspec.Struct, frozen=True, kw_only=True):
    deliveries: list[DeliveryOut]
    # Apart from the crossings: a test has no period, figure or retries.
    tests: Annotated[
        list[WebhookTest],
        msgspec.Meta(description="The latest test webhooks sent on request, the latest first."),
    ]


class RotatedSecret(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    # Shown once: the key of the webhooks' signatures from now on (whsec_...).
    secret: str
    rotated_at: datetime
    previous_signs_until: Annotated[
        datetime,
        msgspec.Meta(
            description="Until when every webhook is signed with the replaced secret too."
        ),
    ]


def _delivery(measure: str, found: Delivery) -> DeliveryOut:
    state = (
        "delivered"
        if found.delivered_at is not None
        else "pending"
        if found.next_attempt_at is not None
        else "failed"
    )
    return DeliveryOut(
        webhook_id=found.webhook_id,
        period=PeriodOut(start=found.period_start, end=found.period_end),
        value=figure(measure, found.value),
        detected_at=found.detected_at,
        state=state,
        delivered_at=found.delivered_at,
        next_attempt_at=found.next_attempt_at,
        attempts=found.attempts,
    )


async def _answers(
    conn: psycopg.AsyncConnection, org: str, found: list[Threshold], request: Request
) -> list[dict[str, Any]]:
    """Each threshold's response fields as the request's key may see them, its current
    period's figure among them."""
    api_key: ApiKey = request.user
    standing = await standings(conn, org, found, datetime.now(UTC))
    return [
        _fields(threshold, where, whole_url=api_key.scope is not Scope.READ)
        for threshold, where in zip(found, standing, strict=True)
    ]


def _fields(threshold: Threshold, standing: Standing, *, whole_url: bool) -> dict[str, Any]:
    return {
        "id": threshold.threshold_id,
        "org": threshold.org,
        "section": threshold.section,
        "measure": threshold.measure,
        "period": threshold.period,
        "tz": threshold.tz,
        "limit": figure(threshold.measure, threshold.limit),
        "filters": ThresholdFilters(**threshold.filters),
        "url": threshold.url if whole_url else _scheme_and_host(threshold.url),
        "created_at": threshold.created_at,
        "current_period": CurrentPeriod(
            start=standing.start,
            end=standing.end,
            value=figure(threshold.measure, standing.value),
        ),
    }


def _scheme_and_host(url: str) -> str:
    """What a read key sees of a webhook URL: a Slack or Teams incoming webhook's path is
    its credential, and a path or query may carry a token anywhere else too."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{f'[{host}]' if ':' in host else host}"


def _bad(field: str, message: str) -> Problem:
    return Problem(400, message, errors=[ErrorItem(field=field, message=message)])


def _checked(asked: ThresholdIn, allowed_hosts: frozenset[str]) -> dict[str, list[str]]:
    """The threshold's filters, once every field is one the section takes; else a 400."""
    if asked.measure not in MEASURES[asked.section]:
        fields = ", ".join(MEASURES[asked.section])
        raise _bad("measure", f"the {asked.section} section's measures are {fields}")
    if asked.measure in COUNTED_MEASURES and not asked.limit.is_integer():
        raise _bad("limit", f"{asked.measure} counts: the limit must be a whole number")
    try:
        parse_zone(asked.tz)
    except WindowError as error:
        raise _bad("tz", str(error)) from None
    given = {
        name: values
        for name, values in msgspec.structs.asdict(asked.filters or ThresholdFilters()).items()
        if values is not UNSET
    }
    try:
        filters = parse_filters(given, _FILTERS[asked.section]).as_dict()
    except FilterError as error:
        raise _bad(f"filters.{error.field}", str(error)) from None
    try:
        target = parse_target(asked.url, allowed_hosts)
        # An address is checked now; a name when a delivery resolves it, before connecting.
        literal = literal_address(target)
        if literal is not None:
            checked_addresses(target, [literal])
    except RefusedTarget as error:
        raise _bad("url", str(error)) from None
    return filters


def _no_such(threshold_id: str) -> Problem:
    return Problem(404, f"threshold {threshold_id!r} not found")


def _known(threshold_id: str) -> str:
    """``threshold_id`` if it could name a threshold; else 404 without asking the database."""
    if not _THRESHOLD_ID.fullmatch(threshold_id):
        raise _no_such(threshold_id)
    return threshold_id


async def _existing(conn: psycopg.AsyncConnection, org: str, threshold_id: str) -> Threshold:
    """The organization's threshold of that id; else 404."""
    found = await find_threshold(conn, org, _known(threshold_id))
    if found is None:
        raise _no_such(threshold_id)
    return found


def _org_of(request: Request, org: str) -> str:
    """``org`` if the request's key may see its thresholds; else 404, as for usage."""
    api_key: ApiKey = request.user
    if not is_slug(org) or (api_key.scope.bound and api_key.org != org):
        raise not_found(org)
    return org


_READ_KEYS_SEE = (
    "A read key sees each webhook URL's scheme and host only: such a URL is often a "
    "credential (Slack's and Teams' incoming webhooks)."
)
# A query's whole number as written: Litestar would also take 1e3, 10.0 and +5 for one.
_WHOLE = re.compile(r"[0-9]+")


class Thresholds(Controller):
    path = "/orgs/{org:str}/thresholds"
    tags = ["thresholds"]

    # The OPTIONS answers, named to come first: api.web.routes.allowed_methods says why.
    @route("/", http_method=HttpMethod.OPTIONS, include_in_schema=False)
    async def allowed_on_list(self) -> Response:
        return allowing("GET, OPTIONS, POST")

    @route("/{threshold_id:str}", http_method=HttpMethod.OPTIONS, include_in_schema=False)
    async def allowed_on_one(self) -> Response:
        return allowing("DELETE, GET, OPTIONS")

    @post(
        "/",
        guards=[requires(Scope.MANAGE, Scope.ADMIN)],
        before_request=strict_body(ThresholdIn),
        status_code=201,
        summary="Create a usage threshold",
        description=(
            "Watch one summary field of a section over each day, week (from Monday) or month "
            "on the wall clock of `tz`, optionally filtered; when a period's figure first "
            "exceeds `limit`, a signed webhook is sent to `url`. The answer carries the "
            "signing secret, shown only here. An organization may have 1,000 thresholds: "
            "409 past that."
        ),
        responses=problem_responses(400, 401, 403, 404, 409, 413, 429, 503),
    )
    async def create(
        self,
        request: Request,
        org: FromPath[str],
        data: JSONBody[ThresholdIn],
        database: NamedDependency[Database],
    ) -> CreatedThreshold:
        _org_of(request, org)
        filters = _checked(data, request.app.state.webhook_allow_hosts)
        async with database.connection() as conn:
            try:
                threshold, secret = await create_threshold(
                    conn,
                    org,
                    section=data.section,
                    measure=data.measure,
                    period=data.period,
                    tz=data.tz,
                    limit=data.limit,
                    filters=filters,
                    url=data.url,
                )
            except TooManyThresholds as error:
                raise Problem(409, f"{error}: delete one first") from None
            (fields,) = await _answers(conn, org, [threshold], request)
        return CreatedThreshold(**fields, secret=secret)

    @get(
        "/",
        guards=[requires(Scope.READ, Scope.MANAGE, Scope.ADMIN)],
        summary="List an organization's usage thresholds",
        description=_READ_KEYS_SEE,
        responses=problem_responses(400, 401, 403, 404, 429, 503),
    )
    async def list_all(
        self, request: Request, org: FromPath[str], database: NamedDependency[Database]
    ) -> ThresholdList:
        _org_of(request, org)
        async with database.connection() as conn:
            found = await list_thresholds(conn, org)
            if found is None:
                raise not_found(org)
            answers = await _answers(conn, org, found, request)
        return ThresholdList(thresholds=[ThresholdOut(**fields) for fields in answers])

    @get(
        "/{threshold_id:str}",
        guards=[requires(Scope.READ, Scope.MANAGE, Scope.ADMIN)],
        summary="Read a usage threshold",
        description=_READ_KEYS_SEE,
        responses=problem_responses(400, 401, 403, 404, 429, 503),
    )
    async def read(
        self,
        request: Request,
        org: FromPath[str],
        threshold_id: FromPath[str],
        database: NamedDependency[Database],
    ) -> ThresholdOut:
        _org_of(request, org)
        async with database.connection() as conn:
            found = await _existing(conn, org, threshold_id)
            (fields,) = await _answers(conn, org, [found], request)
        return ThresholdOut(**fields)

    @delete(
        "/{threshold_id:str}",
        guards=[requires(Scope.MANAGE, Scope.ADMIN)],
        summary="Delete a usage threshold",
        responses=problem_responses(400, 401, 403, 404, 429, 503),
    )
    async def remove(
        self,
        request: Request,
        org: FromPath[str],
        threshold_id: FromPath[str],
        database: NamedDependency[Database],
    ) -> None:
        _org_of(request, org)
        async with database.connection() as conn:
            deleted = await delete_threshold(conn, org, _known(threshold_id))
        if not deleted:
            raise _no_such(threshold_id)

    @get(
        "/{threshold_id:str}/deliveries",
        guards=[requires(Scope.READ, Scope.MANAGE, Scope.ADMIN)],
        summary="List a usage threshold's crossings and their deliveries",
        description=(
            "The threshold's latest crossings, the latest period first: each period's figure "
            "when it was found over the limit, its webhook-id, and every attempt to deliver it: "
            "its status, or why there was none (an error without a status reads the same "
            "whatever kept the receiver from answering; the service's log has the detail)."
        ),
        responses=problem_responses(400, 401, 403, 404, 429, 503),
    )
    async def deliveries(
        self,
        request: Request,
        org: FromPath[str],
        threshold_id: FromPath[str],
        database: NamedDependency[Database],
        limit: Annotated[
            int, QueryParameter(ge=1, le=1000, description="How many crossings, at most.")
        ] = 100,
    ) -> DeliveryList:
        _org_of(request, org)
        if not all(_WHOLE.fullmatch(text) for text in request.query_params.getall("limit", [])):
            raise named("limit", "must be a whole number from 1 to 1000, in digits")
        async with database.connection() as conn:
            threshold = await _existing(conn, org, threshold_id)
            found = await list_deliveries(conn, org, threshold_id, limit)
            tests = await list_tests(conn, org, threshold_id)
        return DeliveryList(
            deliveries=[_delivery(threshold.measure, delivery) for delivery in found],
            tests=tests,
        )

    @post(
        "/{threshold_id:str}/test",
        guards=[requires(Scope.MANAGE, Scope.ADMIN)],
        status_code=200,
        summary="Send a usage threshold a test webhook",
        description=(
            "A `usage.threshold.test` webhook sent to the threshold's URL now, signed and "
            "checked as crossings' are: the body of a crossing of the current period, its "
            'figure so far, with `"test": true`. One attempt, never retried; the answer is '
            "its outcome (200 whatever the receiver did), listed under the deliveries' `tests`."
        ),
        responses=problem_responses(400, 401, 403, 404, 429, 503),
    )
    async def send_test_webhook(
        self,
        request: Request,
        org: FromPath[str],
        threshold_id: FromPath[str],
        database: NamedDependency[Database],
    ) -> WebhookTest:
        _org_of(request, org)
        sent_at = datetime.now(UTC)
        # The connection goes back to the pool while the receiver has up to 10 s to answer.
        async with database.connection() as conn:
            found = await find_signed_threshold(conn, org, _known(threshold_id))
            if found is None:
                raise _no_such(threshold_id)
            threshold, signing = found
            (standing,) = await standings(conn, org, [threshold], sent_at)
        tested = await send_test(
            threshold,
            signing,
            standing,
            sent_at,
            allowed_hosts=request.app.state.webhook_allow_hosts,
            public_url=request.app.state.public_url,
        )
        async with database.connection() as conn:
            # Not recorded if the threshold was deleted meanwhile; the answer still tells
            # what was sent.
            await record_test(conn, org, threshold_id, tested)
        return tested

    @post(
        "/{threshold_id:str}/secret",
        guards=[requires(Scope.MANAGE, Scope.ADMIN)],
        status_code=200,
        summary="Rotate a usage threshold's signing secret",
        description=(
            "A new signing secret, shown only in this answer. For 24 h every webhook carries "
            "two signatures in `webhook-signature`, `v1,<new> v1,<old>`, so that receivers "
            "switch without missing a delivery; then only the new one. Rotating again within "
            "the 24 h signs with the newest two secrets only."
        ),
        responses=problem_responses(400, 401, 403, 404, 429, 503),
    )
    async def rotate(
        self,
        request: Request,
        org: FromPath[str],
        threshold_id: FromPath[str],
        database: NamedDependency[Database],
    ) -> RotatedSecret:
        _org_of(request, org)
        async with database.connection() as conn:
            rotated = await rotate_secret(conn, org, _known(threshold_id))
        if rotated is None:
            raise _no_such(threshold_id)
        return RotatedSecret(
            id=threshold_id,
            secret=rotated.secret,
            rotated_at=rotated.rotated_at,
            previous_signs_until=rotated.rotated_at + ROTATION_GRACE,
        )
