"""The schema: migrations build exactly the metadata, and every key starts with org_id."""

import re

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from hypothesis import HealthCheck, given, settings
from sqlalchemy import Index, UniqueConstraint, create_engine, inspect

from api.storage import migrations, schema
from api.storage.db import sqlalchemy_url
from api.storage.partitions import include_name
from api.storage.schema import metadata
from testkit.database import reset, snapshot
from testkit.factories import post_events
from testkit.strategies import event_sets


def test_upgrade_head_builds_exactly_the_metadata(empty_database_url):
    migrations.upgrade(empty_database_url)
    engine = create_engine(sqlalchemy_url(empty_database_url))
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"include_name": include_name})
        differences = compare_metadata(context, metadata)
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


def test_the_schema_docstring_lists_every_table():
    """The rollup tables are built in loops: the listing is where `grep llm_totals_5m` lands."""
    listing = schema.__doc__.split("Tables (", 1)[1]
    listed = set(re.findall(r"\b[a-z][a-z0-9_]*\b", listing.split(":", 1)[1]))
    assert set(metadata.tables) <= listed
    assert {name for name in listed if name in metadata.tables} == set(metadata.tables)
    assert (
        not {name for name in listed if "_" in name}
        - set(metadata.tables)
        - {name.rsplit("_", 1)[0] for name in metadata.tables}
    )
