"""Alembic environment: the database is DATABASE_URL, the target is api.storage.schema.metadata."""

import os

from alembic import context
from sqlalchemy import create_engine

from api.storage.db import sqlalchemy_url
from api.storage.partitions import include_name
from api.storage.schema import metadata

url = context.config.get_main_option("sqlalchemy.url") or sqlalchemy_url(os.environ["DATABASE_URL"])

if context.is_offline_mode():
    context.configure(
        url=url, target_metadata=metadata, literal_binds=True, include_name=include_name
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    engine = create_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection, target_metadata=metadata, include_name=include_name
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
