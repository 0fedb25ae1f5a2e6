"""The archive's table (migration 0017): one row per kept version of a resource's content.

The content itself lives once per SHA-256 under the data directory (``store.py``); a row
points at it, so a resource that changes back and forth, or two resources with the same file,
cost their bytes once. ``url`` is what DATA.GOV.HK's archive API is asked with: a link's or an
API's own URL, and for an upload or a hub query the path on this site (any host in the
question is ignored for those). Rows are not tied to the resource by a foreign key: the
archive outlives a deleted resource; a purged dataset takes its versions with it.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, String, Table, Text

from smartcity.storage.schema import Id, Json, metadata

versions = Table(
    "opendata_archive_versions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("dataset_id", String(36), nullable=False),
    Column("resource_id", String(36), nullable=False),
    Column("kind", String(16), nullable=False),  # "file" or "data-dictionary"
    Column("url", Text, nullable=False),
    Column("name", Json, nullable=False),  # the resource's name then, per language
    Column("format", String(100), nullable=False),
    Column("mimetype", String(255), nullable=True),
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("captured_at", BigInteger, nullable=False),  # µs since the epoch (UTC)
)
Index(
    "ix_opendata_archive_resource", versions.c.resource_id, versions.c.kind, versions.c.captured_at
)
Index("ix_opendata_archive_url", versions.c.url, versions.c.captured_at)
Index("ix_opendata_archive_sha", versions.c.sha256)
