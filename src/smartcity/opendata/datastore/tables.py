"""The DataStore's registry (migration 0020): one row per resource that has a table.

Each resource's rows live in a table of their own (``ds_<hash of the resource id>``, made by
``store.py``); the registry says which fields it has (id, type, data dictionary info), its
primary key and its indexes, and ``opendata_datastore_loads`` what the last file load did
(state, rows, bad rows by line), so ``datastore_info`` can say why a load failed.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, String, Table, Text

from smartcity.opendata.catalogue.tables import ID
from smartcity.storage.schema import Json, metadata

datastore_tables = Table(
    "opendata_datastore",
    metadata,
    Column(
        "resource_id",
        String(ID),
        ForeignKey("opendata_resources.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("table_name", String(63), nullable=False, unique=True),
    Column("fields", Json, nullable=False),  # [{"id", "type", "info"}] in column order
    Column("primary_key", Json, nullable=False),  # [field id, ...]
    Column("indexes", Json, nullable=False),  # [field id, ...]
    Column("created_at", BigInteger, nullable=False),
    Column("modified_at", BigInteger, nullable=False),
)

loads = Table(
    "opendata_datastore_loads",
    metadata,
    Column(
        "resource_id",
        String(ID),
        ForeignKey("opendata_resources.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("state", String(16), nullable=False),  # pending, running, complete, error
    Column("message", Text, nullable=True),
    Column("encoding", String(32), nullable=True),
    Column("rows_loaded", BigInteger, nullable=False),
    Column("bad_rows", Json, nullable=False),  # [{"line", "error"}], the first 1,000
    Column("bad_row_count", BigInteger, nullable=False),
    Column("started_at", BigInteger, nullable=False),
    Column("finished_at", BigInteger, nullable=True),
)
