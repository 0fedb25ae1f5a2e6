"""Alembic environment: runs migrations on the Database handed over by smartcity.storage.migrate."""

from __future__ import annotations

from alembic import context

from smartcity.storage.schema import metadata

config = context.config
database = config.attributes["database"]

with database.engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=database.is_sqlite,
    )
    context.run_migrations()
