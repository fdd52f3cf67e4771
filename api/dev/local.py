"""`make run`: a working service on this machine in one command.

Without DATABASE_URL, an embedded PostgreSQL cluster under .data/ is started (and stopped on
Ctrl-C). Then: migrate, load the demo data if the database has no events, create a read key
for the demo organization and serve on 127.0.0.1:8000.
"""

import asyncio
import os
from pathlib import Path

import msgspec
import psycopg
from sqlalchemy import exists, select

from api.dev.demo import DEMO_ORG, load_demo
from api.dev.embedded_postgres import EmbeddedPostgres
from api.settings import Settings
from api.storage import migrations
from api.storage.db import compile_statement, connect_kwargs, execute
from api.storage.keys import Scope, create_key
from api.storage.schema import event_receipts
from api.web.app import create_app
from api.web.http_server import serve

HOST, PORT = "127.0.0.1", 8000
DATA_DIR = Path(__file__).resolve().parents[2] / ".data" / "postgres"

_HAS_EVENTS = compile_statement(select(exists().select_from(event_receipts)))


async def _prepare(database_url: str) -> str:
    """Demo data if there are no events yet; returns a fresh read key for the demo org."""
    async with await psycopg.AsyncConnection.connect(database_url, **connect_kwargs()) as conn:
        has_events = (await (await execute(conn, _HAS_EVENTS)).fetchone())[0]
    if not has_events:
        await load_demo(database_url)
    async with await psycopg.AsyncConnection.connect(database_url, **connect_kwargs()) as conn:
        return (await create_key(conn, Scope.READ, DEMO_ORG)).key


def main() -> None:
    embedded = None
    if not os.environ.get("DATABASE_URL"):
        embedded = EmbeddedPostgres(DATA_DIR)
        print(f"Starting the embedded PostgreSQL in {DATA_DIR} ...")
        embedded.start()
        os.environ["DATABASE_URL"] = embedded.url
    try:
        settings = Settings.from_env()
        migrations.upgrade(settings.database_url)
        key = asyncio.run(_prepare(settings.database_url))
        base = f"http://{HOST}:{PORT}"
        print(
            f"\nUsage is serving on {base}\n"
            f"  Page:  {base}/organizations/{DEMO_ORG}/activity/usage#token={key}\n"
            f"  Try:   curl -H 'Authorization: Bearer {key}' "
            f"'{base}/orgs/{DEMO_ORG}/usage/llm?range=7d'\n"
            f"  Ready: curl {base}/readyz\n"
            "Ctrl-C stops the server"
            + (" and the embedded PostgreSQL." if embedded else ".")
            + "\n",
            flush=True,
        )
        serve(
            create_app(settings), HOST, PORT, msgspec.structs.replace(settings, log_level="WARNING")
        )
    finally:
        if embedded:
            embedded.stop()
            print("Stopped the embedded PostgreSQL.")


if __name__ == "__main__":
    main()
