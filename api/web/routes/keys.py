"""API keys over HTTP (DESIGN §13): created, listed, read and revoked.

An admin key manages every key. A manage key manages its own organization's read and
manage keys: never an admin or ingest key, never another organization's (which it cannot
see either: 404, as for usage). The key itself is in the creation's answer only; its hash
never leaves the database.
"""

import re
from datetime import UTC, datetime
from typing import Annotated, Literal

import msgspec
import psycopg
from litestar import Controller, Request, Response, delete, get, post, route
from litestar.di import NamedDependency
from litestar.enums import HttpMethod
from litestar.params import FromPath, JSONBody

from api.core.events import MAX_TEXT_LENGTH, SLUG_PATTERN
from api.core.timestamps import utc_iso
from api.storage.availability import Database
from api.storage.keys import ApiKey, Scope, create_key, live_key, live_keys, revoke_key
from api.web.auth import requires
from api.web.bodies import named, strict_body
from api.web.problems import Problem, problem_responses
from api.web.routes.allowed_methods import allowing

_KEY_ID = re.compile(r"[0-9a-f]{16}")
KeyScope = Literal["read", "ingest", "admin", "manage"]
_Name = Annotated[
    str, msgspec.Meta(min_length=1, max_length=MAX_TEXT_LENGTH, pattern=r"^[^\x00]*$")
]


class KeyIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    scope: KeyScope
    # The organization of a read or manage key; none for ingest and admin keys.
    org: Annotated[str, msgspec.Meta(pattern=SLUG_PATTERN)] | None = None
    name: _Name | None = None
    # RFC 3339, in the future: from then on the key is refused (401).
    expires_at: datetime | None = None


class KeyOut(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    scope: KeyScope
    org: str | None
    name: str | None
    created_at: datetime
    expires_at: datetime | None
    # To the minute: written at most once a minute, so that a request costs no write.
    last_used_at: datetime | None


class CreatedKey(KeyOut, frozen=True, kw_only=True):
    # Shown once: send it as Authorization: Bearer <key>.
    key: str


class KeyList(msgspec.Struct, frozen=True, kw_only=True):
    keys: list[KeyOut]


def _out(key: ApiKey) -> dict:
    return {
        "id": key.key_id,
        "scope": key.scope.value,
        "org": key.org,
        "name": key.name,
        "created_at": key.created_at,
        "expires_at": key.expires_at,
        "last_used_at": key.last_used_at,
    }


def _manages(caller: ApiKey, scope: Scope, org: str | None) -> bool:
    """Whether ``caller`` may manage a key of ``scope`` and ``org``."""
    if caller.scope is Scope.ADMIN:
        return True
    return scope in (Scope.READ, Scope.MANAGE) and org == caller.org


def _no_such(key_id: str) -> Problem:
    return Problem(404, f"key {key_id!r} not found")


def _known(key_id: str) -> None:
    """404 unless ``key_id`` could name a key, before a connection is taken for it."""
    if not _KEY_ID.fullmatch(key_id):
        raise _no_such(key_id)


async def _visible(conn: psycopg.AsyncConnection, caller: ApiKey, key_id: str) -> ApiKey:
    """The live key ``key_id`` if ``caller`` manages it; else 404 (another organization's
    keys are not told apart from keys that do not exist)."""
    found = await live_key(conn, key_id)
    if found is None or not _manages(caller, found.scope, found.org):
        raise _no_such(key_id)
    return found


def _checked(asked: KeyIn, caller: ApiKey, now: datetime) -> None:
    scope = Scope(asked.scope)
    if scope.bound and asked.org is None:
        raise named("org", f"a {scope.value} key belongs to one organization: give its slug")
    if not scope.bound and asked.org is not None:
        raise named("org", f"an {scope.value} key belongs to no organization: leave org out")
    if asked.expires_at is not None:
        if asked.expires_at.tzinfo is None:
            raise named("expires_at", "must have an offset (Z or +hh:mm)")
        if asked.expires_at <= now:
            raise named("expires_at", f"must be in the future (now is {utc_iso(now)})")
    if not _manages(caller, scope, asked.org):
        if scope in (Scope.ADMIN, Scope.INGEST):
            raise Problem(403, f"only an admin key may create {scope.value} keys")
        raise Problem(403, f"a manage key creates keys of its own organization ({caller.org})")


_MANAGERS = [requires(Scope.ADMIN, Scope.MANAGE)]
_WHO = "An admin key manages every key; a manage key its own organization's read and manage keys."


class Keys(Controller):
    path = "/keys"
    tags = ["keys"]
    guards = _MANAGERS

    # The OPTIONS answers, named to come first: api.web.routes.allowed_methods says why.
    @route("/", http_method=HttpMethod.OPTIONS, include_in_schema=False)
    async def allowed_on_list(self) -> Response:
        return allowing("GET, OPTIONS, POST")

    @route("/{key_id:str}", http_method=HttpMethod.OPTIONS, include_in_schema=False)
    async def allowed_on_one(self) -> Response:
        return allowing("DELETE, GET, OPTIONS")

    @post(
        "/",
        before_request=strict_body(KeyIn),
        status_code=201,
        summary="Create an API key",
        description=(
            f"{_WHO} The answer carries the key, shown only here. With `expires_at`, the key "
            "is refused (401, saying it expired) from then on, on every server at once."
        ),
        responses=problem_responses(400, 401, 403, 413, 429, 503),
    )
    async def create(
        self, request: Request, data: JSONBody[KeyIn], database: NamedDependency[Database]
    ) -> CreatedKey:
        _checked(data, request.user, datetime.now(UTC))
        async with database.connection() as conn:
            created = await create_key(
                conn,
                Scope(data.scope),
                data.org,
                name=data.name,
                expires_at=data.expires_at,
            )
        return CreatedKey(**_out(created.stored), key=created.key)

    @get(
        "/",
        summary="List the API keys",
        description=(
            f"{_WHO} The keys not revoked that the caller manages, oldest first; never a "
            "key itself."
        ),
        responses=problem_responses(401, 403, 429, 503),
    )
    async def list_all(self, request: Request, database: NamedDependency[Database]) -> KeyList:
        caller: ApiKey = request.user
        org = None if caller.scope is Scope.ADMIN else caller.org
        async with database.connection() as conn:
            found = await live_keys(conn, org)
        return KeyList(keys=[KeyOut(**_out(key)) for key in found])

    @get(
        "/{key_id:str}",
        summary="Read an API key",
        description=f"{_WHO} Never the key itself.",
        responses=problem_responses(401, 403, 404, 429, 503),
    )
    async def read(
        self, request: Request, key_id: FromPath[str], database: NamedDependency[Database]
    ) -> KeyOut:
        _known(key_id)
        async with database.connection() as conn:
            found = await _visible(conn, request.user, key_id)
        return KeyOut(**_out(found))

    @delete(
        "/{key_id:str}",
        summary="Revoke an API key",
        description=(
            f"{_WHO} From the answer on, the key is refused (401) on every server within a second."
        ),
        responses=problem_responses(401, 403, 404, 429, 503),
    )
    async def revoke(
        self, request: Request, key_id: FromPath[str], database: NamedDependency[Database]
    ) -> None:
        _known(key_id)
        async with database.connection() as conn:
            found = await _visible(conn, request.user, key_id)
            if not await revoke_key(conn, found.key_id):
                raise _no_such(key_id)  # revoked meanwhile
