"""The Citus suite's fixtures: the statements the service sends, caught."""

from collections.abc import Iterator

import psycopg
import pytest

from testkit.plans import Sent


@pytest.fixture
def sent(monkeypatch) -> Iterator[list[Sent]]:
    """Every statement sent through psycopg meanwhile, with its parameters."""
    caught: list[Sent] = []
    send = psycopg.AsyncCursor.execute

    async def catching(cursor, query, params=None, **options):
        if isinstance(query, bytes) and isinstance(params, dict):  # api.storage.db.Compiled
            caught.append((query.decode(), dict(params)))
        return await send(cursor, query, params, **options)

    monkeypatch.setattr(psycopg.AsyncCursor, "execute", catching)
    yield caught
