"""Alembic environment: runs migrations on the Database handed over by smartcity.storage.migrate."""

from __future__ import annotations

from alembic import context

from smartcity.storage.schema import metadata

config = context.config
database = config.attributes["database"]

# As the writer (Database.write: on SQLite, BEGIN IMMEDIATE under the writer lock), not in a
# transaction that reads the schema version first and writes later: SQLite fails such a
# transaction at once ("database is locked") if any other connection commits in between, which
# a running server's leases or an ingest do many times a second.
with database.write() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=database.is_sqlite,
    )
    context.run_migrations()
