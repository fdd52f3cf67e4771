"""RFC 9457 problem details: every error the service returns, in one place."""

import logging
from typing import Any

import msgspec
import psycopg
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR, HTTP_503_SERVICE_UNAVAILABLE
from psycopg_pool import PoolClosed, PoolTimeout

from api.storage.availability import DatabaseReadOnly, DatabaseUnavailable

PROBLEM_JSON = "application/problem+json"
RETRY_AFTER_SECONDS = 5

_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    408: "Request timeout",
    409: "Conflict",
    413: "Request too large",
    415: "Unsupported media type",
    422: "Invalid events",
    429: "Too many requests",
    431: "Request header fields too large",
    499: "Client closed request",
    500: "Internal server error",
    503: "Service unavailable",
}


class ErrorItem(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One of several things wrong: in a batch (`index` is the event's position, `field`
    its attribute) or in a query (`field` is the parameter)."""

    index: int | None = None
    field: str | None
    message: str


class ProblemDetails(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    type: str
    title: str
    status: int
    detail: str
    errors: list[ErrorItem] | None = None


class Problem(Exception):
    """Raised anywhere to answer with a problem; ``headers`` go on the response."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        errors: list[Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}


def problem(status: int, detail: str, errors: list[Any] | None = None) -> ProblemDetails:
    return ProblemDetails(
        type="about:blank",
        title=_TITLES.get(status, "Error"),
        status=status,
        detail=detail,
        errors=errors,
    )


def problem_response(
    status: int,
    detail: str,
    *,
    errors: list[Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[ProblemDetails]:
    return Response(
        problem(status, detail, errors),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def _from_problem(_: Request, problem: Problem) -> Response[ProblemDetails]:
    return problem_response(
        problem.status, problem.detail, errors=problem.errors, headers=problem.headers
    )


# Litestar's words for a client gone before its body ended (it closed the connection, or
# the HTTP server answered it, a 408 say): raised as a 500. Nobody is left to read an
# answer, and nothing went wrong in the service: the access log and /metrics count it as
# nginx does, 499 (client closed request), not as a server error; or with the HTTP server's
# status, when it answered (api.web.logs.ANSWERED_BY_SERVER_KEY).
_CLIENT_GONE = "client disconnected prematurely"
CLIENT_CLOSED_REQUEST = 499


def _from_http_exception(_: Request, exc: HTTPException) -> Response[ProblemDetails]:
    if exc.status_code == HTTP_500_INTERNAL_SERVER_ERROR and exc.detail == _CLIENT_GONE:
        return problem_response(CLIENT_CLOSED_REQUEST, "the client closed the request")
    detail, errors = exc.detail, None
    if isinstance(exc, ValidationException) and isinstance(exc.extra, list):
        errors = [
            ErrorItem(message=str(item.get("message", "")), field=item.get("key"))
            for item in exc.extra
            if isinstance(item, dict)
        ]
        detail = "invalid parameters: " + "; ".join(f"{e.field}: {e.message}" for e in errors)
    return problem_response(exc.status_code, detail, errors=errors, headers=exc.headers)


def _from_database_error(_: Request, exc: Exception) -> Response[ProblemDetails]:
    if isinstance(exc, DatabaseReadOnly | psycopg.errors.ReadOnlySqlTransaction):
        detail = "the database is read-only; nothing was changed, retry later"
    elif isinstance(exc, psycopg.errors.InternalError_):
        # Citus reports a worker lost mid-transaction (even at the commit) as an internal
        # error: whether a batch's commit reached the worker is then unknown, and a batch
        # sent again is stored once either way.
        detail = "a database node was lost; retry later (what was stored is not stored twice)"
    else:
        detail = "the database is unavailable; nothing was changed, retry later"
    return problem_response(
        HTTP_503_SERVICE_UNAVAILABLE, detail, headers={"Retry-After": str(RETRY_AFTER_SECONDS)}
    )


def _from_unexpected(request: Request, exc: Exception) -> Response[ProblemDetails]:
    logging.getLogger("api").exception("unhandled error on %s %s", request.method, request.url.path)
    return problem_response(HTTP_500_INTERNAL_SERVER_ERROR, "an unexpected error occurred")


EXCEPTION_HANDLERS = {
    Problem: _from_problem,
    HTTPException: _from_http_exception,
    # Connection lost, server shutting down or out of resources, a standby or read-only
    # database, no connection within the wait: none is the client's doing, all pass.
    psycopg.OperationalError: _from_database_error,
    psycopg.errors.ReadOnlySqlTransaction: _from_database_error,
    psycopg.errors.InternalError_: _from_database_error,
    PoolTimeout: _from_database_error,
    PoolClosed: _from_database_error,
    DatabaseUnavailable: _from_database_error,
    Exception: _from_unexpected,
}


def problem_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """The problems a route can answer with, declared so the OpenAPI document names their
    media type (Litestar would otherwise document them as application/json)."""
    return {
        status: ResponseSpec(
            data_container=ProblemDetails,
            media_type=PROBLEM_JSON,
            description=_TITLES[status],
            generate_examples=False,
        )
        for status in statuses
    }
