"""Fixtures: a throwaway PostgreSQL cluster for the session, the app over it, API keys; a
throwaway S3 server (SeaweedFS) for the tests that need one, and a new bucket in it.

With ``USAGE_TEST_ENGINE=citus`` (testkit.engine) the cluster is a Citus coordinator and two
workers: ``make test`` runs the Citus suite so (tests/citus, and the tests of the data path)
when this machine's PostgreSQL has Citus.
"""

import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from api.dev.citus_cluster import CitusCluster
from api.dev.embedded_postgres import EmbeddedPostgres
from api.settings import Settings
from api.storage import migrations
from api.storage.keys import CreatedKey, Scope, create_key, revoke_key
from api.web.app import create_app
from testkit.database import new_database, reset, with_connection
from testkit.engine import CITUS
from testkit.object_store import S3Endpoint, create_bucket, delete_bucket, seaweedfs
from testkit.receiver import RECEIVER_HOSTS
from testkit.server import ANY_AGE, CHECKOUT_TIMEOUT, PATIENT_POOL, UNLIMITED, live_server

# The Citus-only tests have nothing to run on one PostgreSQL.
collect_ignore = [] if CITUS else ["citus"]


@pytest.fixture(scope="session")
def postgres() -> Iterator[EmbeddedPostgres | CitusCluster]:
    folder = Path(tempfile.mkdtemp(prefix="usage-test-pg-"))
    cluster = CitusCluster(folder) if CITUS else EmbeddedPostgres(folder, durable=False)
    cluster.start()
    yield cluster
    cluster.stop()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def s3() -> Iterator[S3Endpoint]:
    """A real S3 server of the session's own (each pytest-xdist worker starts one)."""
    folder = Path(tempfile.mkdtemp(prefix="usage-test-s3-"))
    with seaweedfs(folder) as endpoint:
        yield endpoint
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def bucket(s3: S3Endpoint) -> Iterator[str]:
    """A new empty bucket's name. Deleted after the test with what it holds: each bucket is a
    SeaweedFS collection with a volume of its own, and `weed mini` allows one volume for each
    GiB of free disk."""
    name = f"test-{uuid.uuid4().hex}"
    create_bucket(s3, name)
    yield name
    delete_bucket(s3, name)


@pytest.fixture(scope="session")
def database_url(postgres: EmbeddedPostgres) -> str:
    migrations.upgrade(postgres.url)
    return postgres.url


@pytest.fixture
def empty_database_url(postgres: EmbeddedPostgres) -> Iterator[str]:
    """A new database with no tables, dropped after the test."""
    with new_database(postgres.url, "empty_check") as url:
        yield url


@pytest.fixture
def db(database_url: str) -> str:
    """The migrated database with no events in it (API keys are kept)."""
    reset(database_url)
    return database_url


# The session's servers fold nothing: the tests decide when queued events are folded
# (testkit.database.fold, the oracle tests at random points), so no fold in the background
# races a test's reset; tests/ingest/test_folding.py runs the folder in a server.
NO_FOLDER = {"fold_in_server": False}


@pytest.fixture(scope="session")
def client(database_url: str) -> Iterator[TestClient]:
    # Tests send far faster than any caller should; tests/test_rate_limit.py checks the limits.
    settings = Settings(
        database_url=database_url,
        rate_limit=0,
        auth_failure_rate=0,
        webhook_allow_hosts=RECEIVER_HOSTS,
        db_checkout_timeout=CHECKOUT_TIMEOUT,
        **NO_FOLDER,
        **ANY_AGE,
    )
    with TestClient(app=create_app(settings)) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def server_url(database_url: str) -> Iterator[str]:
    """The real HTTP server (`usage-api serve`) over the test database; its requests wait
    for a busy pool as long as the browser tests wait (testkit.server.CHECKOUT_TIMEOUT)."""
    with live_server(
        database_url, USAGE_FOLD_IN_SERVER="0", **UNLIMITED, **PATIENT_POOL
    ) as base_url:
        yield base_url


@pytest.fixture(scope="session")
def new_key(database_url: str) -> Callable[..., CreatedKey]:
    """Creates a key: ``new_key(Scope.READ, "acme")``."""
    return lambda scope, org=None: with_connection(
        database_url, lambda conn: create_key(conn, scope, org)
    )


@pytest.fixture(scope="session")
def revoke(database_url: str) -> Callable[[str], bool]:
    """Revokes a key by its id."""
    return lambda key_id: with_connection(database_url, lambda conn: revoke_key(conn, key_id))


@pytest.fixture(scope="session")
def ingest_key(new_key) -> str:
    return new_key(Scope.INGEST).key


@pytest.fixture(scope="session")
def admin_key(new_key) -> str:
    return new_key(Scope.ADMIN).key


@pytest.fixture(scope="session")
def read_key(new_key) -> str:
    return new_key(Scope.READ, "acme").key


@pytest.fixture(scope="session")
def revoked_key(new_key, revoke) -> str:
    """An admin key, revoked: it opens nothing."""
    created = new_key(Scope.ADMIN)
    assert revoke(created.key_id)
    return created.key
