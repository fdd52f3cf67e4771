"""Who is calling: the bearer key of every request, and what its scope lets it do."""

import time
from datetime import UTC, datetime

from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.middleware.base import DefineMiddleware
from prometheus_client import Counter

from api.core.rate_limit import client_address
from api.core.timestamps import utc_iso
from api.storage.keys import ApiKey, Scope
from api.web.metrics import AUTH_FAILURES_LIMITED, RATE_LIMITED
from api.web.problems import Problem

PUBLIC = {"exclude_from_auth": True}  # route option: no key needed
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="usage"'}


class _BearerKey(AbstractAuthenticationMiddleware):
    async def authenticate_request(self, connection: ASGIConnection) -> AuthenticationResult:
        scheme, _, key = connection.headers.get("authorization", "").partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise Problem(
                401, "an API key is required: Authorization: Bearer <key>", headers=_CHALLENGE
            )
        state = connection.app.state
        now = time.monotonic()
        # connection.client is the TCP peer: the server lets no proxy header rewrite it
        # (api.web.http_server), so X-Forwarded-For is weighed here alone.
        address = client_address(
            connection.client.host if connection.client else None,
            connection.headers.get("x-forwarded-for"),
            state.trusted_proxies,
        )
        # Only guesses are slowed: a live key is served whatever its address sent before.
        if not state.key_cache.is_live(key):
            _refuse_if_waiting(
                state.auth_failure_limiter.refusal(address, now),
                AUTH_FAILURES_LIMITED,
                "too many unknown keys from this address",
            )
        api_key = await state.key_cache.find(key)
        if api_key is None:
            state.auth_failure_limiter.spend(address, now)
            raise Problem(401, "the API key is unknown or revoked", headers=_CHALLENGE)
        wall_clock = datetime.now(UTC)
        if api_key.expired(wall_clock):
            raise Problem(
                401,
                f"the API key expired at {utc_iso(api_key.expires_at.astimezone(UTC))}",
                headers=_CHALLENGE,
            )
        state.key_cache.note_use(api_key, wall_clock)
        _refuse_if_waiting(
            state.rate_limiter.wait(api_key.key_id, now),
            RATE_LIMITED,
            "this key sent too many requests",
        )
        return AuthenticationResult(user=api_key, auth=api_key)


def _refuse_if_waiting(wait: int, refusals: Counter, reason: str) -> None:
    """429 with Retry-After while a rate limit says to wait ``wait`` seconds."""
    if wait:
        refusals.inc()
        raise Problem(429, f"{reason}; retry in {wait} s", headers={"Retry-After": str(wait)})


# The OpenAPI document and the metrics are public: they describe the API and the process,
# not anyone's usage.
authentication = DefineMiddleware(_BearerKey, exclude=["^/schema", "^/metrics$"])


def requires(*scopes: Scope):
    """A guard: the request's key must have one of ``scopes``. Async, as every guard here:
    Litestar runs a sync guard in a worker thread (``ensure_async_callable``), a thread hop
    per guard and request."""

    async def guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
        if connection.scope["method"] == "OPTIONS":
            # Litestar's own answer (the Allow header): no key, as for CORS preflights.
            return
        api_key: ApiKey = connection.user
        if api_key.scope not in scopes:
            allowed = " or ".join(scope.value for scope in scopes)
            raise Problem(
                403,
                f"this route needs a key of scope {allowed}; "
                f"this key has scope {api_key.scope.value}",
            )

    return guard
