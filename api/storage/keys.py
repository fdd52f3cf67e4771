"""API keys: random, shown once, stored as SHA-256 hashes, each with one scope, an optional
name and expiry, and when it was last used (to the minute)."""

import enum
import hashlib
import secrets
from datetime import datetime

import msgspec
import psycopg
from sqlalchemy import DateTime, Text, bindparam, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert

from api.storage.anchors import register_orgs
from api.storage.db import compile_statement, execute, unnest_rows
from api.storage.schema import ALL_ORGS, api_keys

KEY_PREFIX = "usage_"
# Told each revoked key's id, when its revocation commits (api.storage.key_cache listens).
REVOKED_CHANNEL = "usage_key_revoked"
# Told each new key's hash (hex), when its creation commits: the servers then know a request
# with it for a real key's, not a guess (api.storage.key_cache).
CREATED_CHANNEL = "usage_key_created"


class Scope(enum.StrEnum):
    READ = "read"
    INGEST = "ingest"
    ADMIN = "admin"
    MANAGE = "manage"  # an organization's thresholds (§10)

    @property
    def bound(self) -> bool:
        """Whether a key of this scope belongs to one organization."""
        return self in (Scope.READ, Scope.MANAGE)


class ApiKey(msgspec.Struct, frozen=True, kw_only=True):
    key_id: str
    scope: Scope
    org: str | None  # the one organization of a read or manage key
    created_at: datetime
    revoked_at: datetime | None = None
    name: str | None = None
    expires_at: datetime | None = None
    last_used_at: datetime | None = None  # to the minute

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


class CreatedKey(msgspec.Struct, frozen=True, kw_only=True):
    key_id: str
    key: str
    stored: ApiKey


def hash_key(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


_KEY_COLUMNS = (
    api_keys.c.key_id,
    api_keys.c.scope,
    api_keys.c.org_id,
    api_keys.c.created_at,
    api_keys.c.revoked_at,
    api_keys.c.name,
    api_keys.c.expires_at,
    api_keys.c.last_used_at,
)
_ADD_KEY = compile_statement(
    insert(api_keys)
    .values(
        org_id=bindparam("org_id"),
        key_id=bindparam("key_id"),
        scope=bindparam("scope"),
        key_hash=bindparam("key_hash"),
        name=bindparam("name", type_=Text),
        expires_at=bindparam("expires_at", type_=DateTime(timezone=True)),
    )
    .returning(*_KEY_COLUMNS)
)
_FIND_KEY = compile_statement(
    select(*_KEY_COLUMNS).where(
        api_keys.c.key_hash == bindparam("key_hash"), api_keys.c.revoked_at.is_(None)
    )
)
_LIST_KEYS = compile_statement(
    select(*_KEY_COLUMNS).order_by(api_keys.c.created_at, api_keys.c.key_id)
)
_LIVE = api_keys.c.revoked_at.is_(None)
# Live keys, of one organization or (org None) of all.
_LIST_LIVE_KEYS = compile_statement(
    select(*_KEY_COLUMNS)
    .where(
        _LIVE, or_(bindparam("org", type_=Text).is_(None), api_keys.c.org_id == bindparam("org"))
    )
    .order_by(api_keys.c.created_at, api_keys.c.key_id)
)
_LIVE_KEY = compile_statement(
    select(*_KEY_COLUMNS).where(_LIVE, api_keys.c.key_id == bindparam("key_id", type_=Text))
)
# Only ever forward, and only to a later minute: of several servers using one key in the
# same minute, one writes.
_USED = unnest_rows([("key_id", Text()), ("minute", DateTime(timezone=True))], prefix="used_")
_RECORD_USES = compile_statement(
    update(api_keys)
    .where(
        api_keys.c.key_id == _USED.c.key_id,
        or_(api_keys.c.last_used_at.is_(None), api_keys.c.last_used_at < _USED.c.minute),
    )
    .values(last_used_at=_USED.c.minute)
)
_REVOKE_KEY = compile_statement(
    update(api_keys)
    .where(api_keys.c.key_id == bindparam("key_id"), api_keys.c.revoked_at.is_(None))
    .values(revoked_at=func.now())
    .returning(api_keys.c.key_id)
)
_NOTIFY_REVOKED = compile_statement(
    select(func.pg_notify(REVOKED_CHANNEL, bindparam("key_id", type_=Text)))
)
_NOTIFY_CREATED = compile_statement(
    select(func.pg_notify(CREATED_CHANNEL, bindparam("key_hash_hex", type_=Text)))
)
_LIVE_KEY_HASHES = compile_statement(
    select(api_keys.c.key_hash).where(api_keys.c.revoked_at.is_(None))
)


def _api_key(row: tuple) -> ApiKey:
    key_id, scope, org_id, created_at, revoked_at, name, expires_at, last_used_at = row
    return ApiKey(
        key_id=key_id,
        scope=Scope(scope),
        org=None if org_id == ALL_ORGS else org_id,
        created_at=created_at,
        revoked_at=revoked_at,
        name=name,
        expires_at=expires_at,
        last_used_at=last_used_at,
    )


async def create_key(
    conn: psycopg.AsyncConnection,
    scope: Scope,
    org: str | None,
    *,
    name: str | None = None,
    expires_at: datetime | None = None,
) -> CreatedKey:
    """A new key; a read or manage key's organization is created if it has no events yet."""
    if scope.bound != (org is not None):
        raise ValueError(
            "a read or manage key needs an organization; ingest and admin keys take none"
        )
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key_hash = hash_key(secret)
    async with conn.transaction():
        if org is not None:
            await register_orgs(conn, [org])
        cursor = await execute(
            conn,
            _ADD_KEY,
            org_id=org or ALL_ORGS,
            key_id=secrets.token_hex(8),
            scope=scope.value,
            key_hash=key_hash,
            name=name,
            expires_at=expires_at,
        )
        stored = _api_key(await cursor.fetchone())
        await execute(conn, _NOTIFY_CREATED, key_hash_hex=key_hash.hex())
    return CreatedKey(key_id=stored.key_id, key=secret, stored=stored)


async def find_key(conn: psycopg.AsyncConnection, key: str) -> ApiKey | None:
    """The live key with this secret, if any. The lookup is by hash, so the time it takes
    says nothing about how close a guess was."""
    cursor = await execute(conn, _FIND_KEY, key_hash=hash_key(key))
    row = await cursor.fetchone()
    return None if row is None else _api_key(row)


async def live_key_hashes(conn: psycopg.AsyncConnection) -> set[bytes]:
    cursor = await execute(conn, _LIVE_KEY_HASHES)
    return {bytes(row[0]) for row in await cursor.fetchall()}


async def list_keys(conn: psycopg.AsyncConnection) -> list[ApiKey]:
    """Every key, revoked ones included (the CLI's list)."""
    cursor = await execute(conn, _LIST_KEYS)
    return [_api_key(row) for row in await cursor.fetchall()]


async def live_keys(conn: psycopg.AsyncConnection, org: str | None) -> list[ApiKey]:
    """The keys not revoked, of ``org`` (None: of every organization, and unbound ones)."""
    cursor = await execute(conn, _LIST_LIVE_KEYS, org=org)
    return [_api_key(row) for row in await cursor.fetchall()]


async def live_key(conn: psycopg.AsyncConnection, key_id: str) -> ApiKey | None:
    row = await (await execute(conn, _LIVE_KEY, key_id=key_id)).fetchone()
    return None if row is None else _api_key(row)


async def record_uses(conn: psycopg.AsyncConnection, uses: dict[str, datetime]) -> int:
    """Each key's ``last_used_at`` moved to its minute in ``uses`` where that is later: the
    rows written."""
    cursor = await execute(
        conn, _RECORD_USES, used_key_id=list(uses), used_minute=list(uses.values())
    )
    return cursor.rowcount


async def revoke_key(conn: psycopg.AsyncConnection, key_id: str) -> bool:
    """Revokes the live key ``key_id`` (False if there is none), and tells the servers."""
    async with conn.transaction():
        cursor = await execute(conn, _REVOKE_KEY, key_id=key_id)
        if await cursor.fetchone() is None:
            return False
        await execute(conn, _NOTIFY_REVOKED, key_id=key_id)
    return True
