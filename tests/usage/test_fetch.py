"""A read's statements run in one read-only REPEATABLE READ transaction that they begin and
end themselves inside the pipeline (api.reads.fetch): one snapshot, and a failure leaves
the connection as it found it."""

import asyncio

import psycopg
import pytest
from psycopg.pq import TransactionStatus
from sqlalchemy import Text, cast, func, literal, select

from api.reads.fetch import UnknownOrg, fetch_all
from api.storage.db import compile_statement, connect_kwargs, plan_for_engine

_TRANSACTION = compile_statement(
    select(
        func.current_setting("transaction_isolation").label("isolation"),
        func.current_setting("transaction_read_only").label("read_only"),
        cast(func.pg_current_snapshot(), Text).label("snapshot"),
        func.now().label("started"),
    )
)
_FAILING = compile_statement(select(literal(1) / literal(0)))


async def _on_a_connection(database_url: str, use) -> object:
    async with await psycopg.AsyncConnection.connect(database_url, **connect_kwargs()) as conn:
        # Prepared and planned once, as the server's connections are.
        await plan_for_engine(conn)
        return await use(conn)


def test_the_statements_share_one_read_only_repeatable_read_transaction(db: str) -> None:
    async def read(conn: psycopg.AsyncConnection) -> list[list]:
        # More than the five runs after which psycopg would prepare on its own.
        return [
            await fetch_all(conn, [(_TRANSACTION, {"org": None})] * 3, planned_with_values=i % 2)
            for i in range(7)
        ]

    reads = asyncio.run(_on_a_connection(db, read))
    for results in reads:
        rows = [row for rows in results for row in rows]
        assert {(row.isolation, row.read_only) for row in rows} == {("repeatable read", "on")}
        assert len({(row.snapshot, row.started) for row in rows}) == 1
    # Each read is a transaction of its own.
    assert len({results[0][0].started for results in reads}) == len(reads)


def test_a_failing_statement_leaves_the_connection_idle_and_usable(db: str) -> None:
    async def read(conn: psycopg.AsyncConnection) -> tuple[TransactionStatus, list[list]]:
        with pytest.raises(psycopg.errors.DivisionByZero):
            await fetch_all(conn, [(_TRANSACTION, {"org": None}), (_FAILING, {})])
        status = conn.info.transaction_status
        return status, await fetch_all(conn, [(_TRANSACTION, {"org": None})])

    status, after = asyncio.run(_on_a_connection(db, read))
    assert status == TransactionStatus.IDLE
    assert after[0][0].isolation == "repeatable read"


def test_an_unknown_org_is_told_after_the_transaction_ended(db: str) -> None:
    async def read(conn: psycopg.AsyncConnection) -> TransactionStatus:
        with pytest.raises(UnknownOrg):
            await fetch_all(conn, [(_TRANSACTION, {"org": "no-such-org"})])
        return conn.info.transaction_status

    assert asyncio.run(_on_a_connection(db, read)) == TransactionStatus.IDLE
