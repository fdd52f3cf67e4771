"""Alembic, driven from the service: `usage-api migrate` and the tests use these."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import psycopg
from alembic import command
from alembic.config import Config

from api.storage.db import sqlalchemy_url

_SCRIPTS = Path(__file__).resolve().parents[2] / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    config.set_main_option("sqlalchemy.url", sqlalchemy_url(database_url).replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(database_url), revision)


class AwaitableConnection:
    """psycopg's blocking connection under Alembic's, with the awaitable calls of an
    ``AsyncConnection`` that the service's storage code makes, so that a migration runs that
    code (``api.storage.rebuild``) inside its own transaction: each call is complete when it
    returns, so ``asyncio.run`` drives it without waiting on anything."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self._conn = conn

    async def execute(self, query: Any, params: Any = None) -> "_AwaitableCursor":
        return _AwaitableCursor(self._conn.execute(query, params))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        with self._conn.transaction():  # a savepoint in the migration's transaction
            yield


class _AwaitableCursor:
    def __init__(self, cursor: psycopg.Cursor) -> None:
        self._cursor = cursor

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()
