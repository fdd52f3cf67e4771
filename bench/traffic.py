"""What the load test and the soak run against: `throwaway_service`, a migrated durable
PostgreSQL and the real server with keys. They send and check with testkit.traffic."""

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from api.dev.embedded_postgres import EmbeddedPostgres
from api.storage import migrations
from api.storage.keys import Scope, create_key
from testkit import oracle
from testkit.database import with_connection
from testkit.server import running_server

SECTIONS = list(oracle.SECTIONS)
PRESETS = ["24h", "7d", "30d"]


@dataclass(frozen=True, slots=True)
class Service:
    url: str  # the server's
    database_url: str
    keys: dict[str, str]  # "ingest" and "admin" (every organization)


@contextmanager
def throwaway_service(name: str) -> Iterator[Service]:
    """A durable PostgreSQL (fsync on, as in production) in a temp dir, migrated, with an
    ingest and an admin key, and the real server on loopback without rate limits; all of it
    stopped and removed on exit."""
    folder = Path(tempfile.mkdtemp(prefix=f"usage-{name}-"))
    cluster = EmbeddedPostgres(folder, durable=True)
    try:
        cluster.start()
        migrations.upgrade(cluster.url)
        keys = {
            scope.value: with_connection(
                cluster.url, lambda conn, scope=scope: create_key(conn, scope, None)
            ).key
            for scope in (Scope.INGEST, Scope.ADMIN)
        }
        with running_server(cluster.url, USAGE_RATE_LIMIT="0") as server:
            yield Service(url=server.url, database_url=cluster.url, keys=keys)
    finally:
        cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)
