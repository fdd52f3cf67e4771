"""The schema: migrations build exactly the metadata, and every key starts with org_id."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from hypothesis import HealthCheck, given, settings
from sqlalchemy import Index, UniqueConstraint, create_engine, inspect

from api import migrations
from api.db import sqlalchemy_url
from api.schema import metadata
from tests.database import reset, snapshot
from tests.factories import post_events
from tests.strategies import event_sets


def test_upgrade_head_builds_exactly_the_metadata(empty_database_url):
    migrations.upgrade(empty_database_url)
    engine = create_engine(sqlalchemy_url(empty_database_url))
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    engine.dispose()
    assert differences == []


def test_downgrade_base_removes_every_table(empty_database_url):
    migrations.upgrade(empty_database_url)
    migrations.downgrade(empty_database_url)
    engine = create_engine(sqlalchemy_url(empty_database_url))
    remaining = set(inspect(engine).get_table_names()) - {"alembic_version"}
    engine.dispose()
    assert remaining == set()
    migrations.upgrade(empty_database_url)  # and back up again


@pytest.mark.parametrize("table", metadata.sorted_tables, ids=lambda table: table.name)
def test_every_key_starts_with_org_id(table):
    assert "org_id" in table.columns
    assert table.primary_key.columns.values()[0].name == "org_id"
    unique_keys = [c for c in table.constraints if isinstance(c, UniqueConstraint)]
    unique_keys += [i for i in table.indexes if isinstance(i, Index) and i.unique]
    for key in unique_keys:
        assert next(iter(key.columns)).name == "org_id", key.name


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(events=event_sets)
def test_migration_0002_derives_the_reservation_changes_ingest_keeps(
    client, database_url, ingest_key, events
):
    reset(database_url)
    assert post_events(client, ingest_key, events).status_code == 200
    built_by_ingest = snapshot(database_url)
    migrations.downgrade(database_url, "0001")
    migrations.upgrade(database_url)
    assert snapshot(database_url) == built_by_ingest
