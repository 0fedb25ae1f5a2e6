"""Migration 0014 creates exactly the tables the code declares (catalogue/tables.py and
search/tables.py), on both backends: Alembic's autogenerate finds nothing to change."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from smartcity.opendata.catalogue import tables as catalogue_tables  # noqa: F401
from smartcity.opendata.datastore import tables as datastore_tables  # noqa: F401
from smartcity.opendata.search import tables as search_tables  # noqa: F401
from smartcity.storage import schema
from smartcity.storage.engine import Database


def test_migration_matches_the_declared_tables(db: Database) -> None:
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = compare_metadata(context, schema.metadata)
    ours = [d for d in diffs if "opendata_" in repr(d)]
    assert ours == []
