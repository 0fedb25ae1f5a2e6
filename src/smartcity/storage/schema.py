"""The relational schema shared by SQLite and PostgreSQL.

Design notes (why it looks like this):

* ``entities`` holds the *latest state* of each entity as one JSON document (attribute names
  already expanded to IRIs). Retrieval is one primary-key read; the history lives elsewhere so
  that tens of millions of instances never slow the latest-state queries down.
* ``entity_types`` and ``entity_attrs`` are narrow index tables for the discovery endpoints and
  for ``type=`` / ``attrs=`` filters, which would otherwise scan every document.
* Times are integers (microseconds since the epoch) in indexed columns: they compare and bucket
  the same way on both backends, and they are half the size of text timestamps.
* ``attr_history`` is append-only (one row per accepted attribute change); ``num`` holds the
  numeric value, if any, so that aggregations never parse JSON.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

# JSONB on PostgreSQL (indexable, operators for q-queries); JSON text on SQLite.
Json = JSON().with_variant(JSONB(), "postgresql")
# SQLite only aliases the rowid for INTEGER PRIMARY KEY, so big ids use Integer there.
Id = BigInteger().with_variant(Integer(), "sqlite")

entities = Table(
    "entities",
    metadata,
    Column("eid", Id, primary_key=True, autoincrement=True),
    Column("tenant", String(255), nullable=False),
    Column("entity_id", String(1024), nullable=False),
    Column("doc", Json, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("modified_at", BigInteger, nullable=False),
    UniqueConstraint("tenant", "entity_id", name="uq_entities_tenant_id"),
    Index("ix_entities_tenant_eid", "tenant", "eid"),
    Index("ix_entities_tenant_modified", "tenant", "modified_at", "eid"),  # changes since T
)

entity_types = Table(
    "entity_types",
    metadata,
    Column("eid", Id, ForeignKey("entities.eid", ondelete="CASCADE"), primary_key=True),
    Column("etype", String(1024), primary_key=True),
    Column("tenant", String(255), nullable=False),
    Index("ix_entity_types_tenant_type", "tenant", "etype", "eid"),
)

entity_attrs = Table(
    "entity_attrs",
    metadata,
    Column("eid", Id, ForeignKey("entities.eid", ondelete="CASCADE"), primary_key=True),
    Column("attr", String(1024), primary_key=True),
    Column("tenant", String(255), nullable=False),
    Index("ix_entity_attrs_tenant_attr", "tenant", "attr", "eid"),
)

# Bounding boxes of every GeoProperty instance, for the geo-query prefilter. SQLite indexes them
# with an R*Tree virtual table kept in step by triggers; PostgreSQL with a GiST index on the
# built-in box type (no PostGIS needed). Candidates are then checked exactly with shapely.
entity_geo = Table(
    "entity_geo",
    metadata,
    Column("gid", Id, primary_key=True, autoincrement=True),
    Column("eid", Id, ForeignKey("entities.eid", ondelete="CASCADE"), nullable=False),
    Column("tenant", String(255), nullable=False),
    Column("attr", String(1024), nullable=False),
    Column("minx", Float, nullable=False),
    Column("miny", Float, nullable=False),
    Column("maxx", Float, nullable=False),
    Column("maxy", Float, nullable=False),
    Index("ix_entity_geo_eid", "eid"),
)

history_entities = Table(
    "history_entities",
    metadata,
    Column("hid", Id, primary_key=True, autoincrement=True),
    Column("tenant", String(255), nullable=False),
    Column("entity_id", String(1024), nullable=False),
    Column("types", Json, nullable=False),
    Column("scope", Json, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("modified_at", BigInteger, nullable=False),
    Column("deleted_at", BigInteger, nullable=True),
    UniqueConstraint("tenant", "entity_id", name="uq_history_entities_tenant_id"),
    # Deletions, for other nodes' live views (migration 0021): only deleted entities' rows.
    Index(
        "ix_history_entities_deleted",
        "tenant",
        "deleted_at",
        postgresql_where=text("deleted_at IS NOT NULL"),
        sqlite_where=text("deleted_at IS NOT NULL"),
    ),
)

attr_history = Table(
    "attr_history",
    metadata,
    Column("iid", Id, primary_key=True, autoincrement=True),
    Column("hid", Id, ForeignKey("history_entities.hid", ondelete="CASCADE"), nullable=False),
    Column("attr", String(1024), nullable=False),
    Column("dataset_id", String(1024), nullable=False, default=""),
    Column("instance_id", String(100), nullable=False),
    # observedAt if the instance has one, else the time the hub accepted it.
    Column("observed_at", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("modified_at", BigInteger, nullable=False),
    Column("num", Float, nullable=True),
    Column("value", Json, nullable=False),
    # Set on the record of a deletion (migration 0009): the attribute instance was deleted
    # then; its value is urn:ngsi-ld:null. NULL on every other instance.
    Column("deleted_at", BigInteger, nullable=True),
    Index("ix_attr_history_series", "hid", "attr", "observed_at"),
    Index("ix_attr_history_instance", "instance_id"),
)

# Hourly rollup of attr_history by observedAt (migration 0002), for the Temporal API: an
# aggregation reads one row per series and hour instead of every instance (30 days of
# 1-minute data is 720 rows per series, not 43,200). Kept exact in the writing transaction
# (history.record and the temporal writes); min/max cannot be "un-added", so corrections and
# deletions of instances recompute the hours they touch. WITHOUT ROWID on SQLite: the rows of
# one series are stored together, in key order.
attr_history_hourly = Table(
    "attr_history_hourly",
    metadata,
    Column("hid", Id, ForeignKey("history_entities.hid", ondelete="CASCADE"), primary_key=True),
    Column("attr", String(1024), primary_key=True),
    Column("hour", BigInteger, primary_key=True),  # start of the hour, microseconds
    Column("dataset_id", String(1024), primary_key=True),
    Column("n", BigInteger, nullable=False),  # instances
    Column("n_num", BigInteger, nullable=False),  # instances with a numeric value
    Column("total", Float, nullable=False),  # sum of the numeric values
    Column("sumsq", Float, nullable=False),
    Column("vmin", Float, nullable=True),
    Column("vmax", Float, nullable=True),
    Column("first_at", BigInteger, nullable=False),  # earliest observed_at in the hour
    Column("last_at", BigInteger, nullable=False),
    Column("kind", String(32), nullable=False),  # attribute type, e.g. Property
    sqlite_with_rowid=False,
)

# Months of history that ``smartcity history retain`` moved out of the database into Parquet
# (migration 0023; storage/partitions.py): written before a month's rows leave, so the Temporal
# API refuses queries reaching into it (410) from then on, with ``location`` in its message.
# A month has more than one batch when readings for it arrived after it was archived.
# On PostgreSQL ``attr_history`` and ``attr_history_hourly`` are partitioned by month there
# (the tables below declare the unpartitioned layout SQLite keeps; see partitions.py).
history_archives = Table(
    "history_archives",
    metadata,
    Column("month", String(7), primary_key=True),  # YYYY-MM, UTC
    Column("batch", Integer, primary_key=True),
    Column("lo_us", BigInteger, nullable=False),  # the month's first microsecond
    Column("hi_us", BigInteger, nullable=False),  # the next month's
    Column("location", Text, nullable=False),  # the archive folder
    Column("state", String(16), nullable=False),  # archiving | archived
    Column("rows", BigInteger, nullable=True),  # rows written, once archived
    # SQLite: the highest attr_history key archived; later rows of the month are another batch.
    Column("upto_key", BigInteger, nullable=True),
    Column("started_at", BigInteger, nullable=False),
    Column("finished_at", BigInteger, nullable=True),
)


def outbox_delivery_columns() -> list[Column[Any]]:
    """The delivery state both outboxes share (migration 0012; hub/subscriptions/outbox.py).

    ``claimed_by`` names the worker delivering the row; its ``next_attempt_at`` is then that
    worker's lease, renewed while it works. ``failed_at`` marks a notification given up (its
    subscription expired or was paused while the receiver kept failing): kept, not retried,
    listed and replayable through the API."""
    return [
        Column("claimed_by", String(64), nullable=True),
        Column("last_attempt_at", BigInteger, nullable=True),
        Column("failed_at", BigInteger, nullable=True),
        Column("failed_reason", Text, nullable=True),
    ]


subscriptions = Table(
    "subscriptions",
    metadata,
    Column("tenant", String(255), primary_key=True),
    Column("sub_id", String(1024), primary_key=True),
    Column("doc", Json, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("modified_at", BigInteger, nullable=False),
    Column("times_sent", Integer, nullable=False, default=0),
    Column("times_failed", Integer, nullable=False, default=0),
    Column("last_notification", BigInteger, nullable=True),
    Column("last_success", BigInteger, nullable=True),
    Column("last_failure", BigInteger, nullable=True),
    # When a notification was last queued (throttling, across every node; migration 0021).
    Column("last_queued_at", BigInteger, nullable=True),
)

# Notifications owed to receivers. A row is written in the same transaction as the change that
# caused it, so a notification survives a crash; the notifier deletes it once delivered, and
# keeps it (failed_at) if its subscription ends while the receiver still refuses it.
outbox = Table(
    "outbox",
    metadata,
    Column("oid", Id, primary_key=True, autoincrement=True),
    Column("tenant", String(255), nullable=False),
    Column("sub_id", String(1024), nullable=False),
    Column("payload", Json, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("next_attempt_at", BigInteger, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text, nullable=True),
    *outbox_delivery_columns(),
    # Claims read "not failed and due"; failed notifications are listed by failed_at.
    Index("ix_outbox_due", "failed_at", "next_attempt_at"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("key_id", String(32), primary_key=True),
    Column("name", String(255), nullable=False),
    Column("digest", String(128), nullable=False, unique=True),
    Column("scope", String(16), nullable=False),
    Column("tenants", Json, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger, nullable=True),
)

jsonld_contexts = Table(
    "jsonld_contexts",
    metadata,
    Column("url", String(2048), primary_key=True),
    Column("body", Text, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    # The tenant a hosted context belongs to (migration 0011); '' for cached and preloaded
    # contexts, which every tenant shares.
    Column("tenant", String(255), nullable=False, server_default=""),
)

# Context source registrations (federation: department brokers registered with the hub,
# migration 0010). The document keeps the payload with names expanded; expires_at (micro-
# seconds, NULL = never) lets the forwarding path skip expired ones without parsing dates.
csource_registrations = Table(
    "csource_registrations",
    metadata,
    Column("tenant", String(255), primary_key=True),
    Column("reg_id", String(1024), primary_key=True),
    Column("doc", Json, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("modified_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=True),
)

# Subscriptions to context source registrations (clause 5.11), and the notifications owed
# to them (written in the registration's transaction, deleted once delivered).
csource_subscriptions = Table(
    "csource_subscriptions",
    metadata,
    Column("tenant", String(255), primary_key=True),
    Column("sub_id", String(1024), primary_key=True),
    Column("doc", Json, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("modified_at", BigInteger, nullable=False),
    Column("times_sent", Integer, nullable=False, default=0),
    Column("times_failed", Integer, nullable=False, default=0),
    Column("last_notification", BigInteger, nullable=True),  # migration 0012
    Column("last_success", BigInteger, nullable=True),
    Column("last_failure", BigInteger, nullable=True),
    Column("last_queued_at", BigInteger, nullable=True),  # migration 0032: throttling
)

csource_outbox = Table(
    "csource_outbox",
    metadata,
    Column("oid", Id, primary_key=True, autoincrement=True),
    Column("tenant", String(255), nullable=False),
    Column("sub_id", String(1024), nullable=False),
    Column("payload", Json, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("next_attempt_at", BigInteger, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text, nullable=True),
    *outbox_delivery_columns(),
    Index("ix_csource_outbox_due", "failed_at", "next_attempt_at"),
)

# Several nodes on one database (migration 0021). A periodic job's lease: the node holding it
# (``holder`` until ``expires_at``, microseconds) is the one that runs it; ``last_run_at``
# keeps the job's period across nodes (storage/leases.py).
cluster_leases = Table(
    "cluster_leases",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("holder", String(200), nullable=True),
    Column("expires_at", BigInteger, nullable=False),
    Column("last_run_at", BigInteger, nullable=True),
    Column("last_holder", String(200), nullable=True),
    Column("runs", BigInteger, nullable=False, default=0),
)

# Values every node must share, created once by whichever node needs them first: the server
# secret that signs CSRF tokens and session cookies and keys rate-limit hashes
# (portal/feedback/secret.py), when the database is PostgreSQL.
cluster_settings = Table(
    "cluster_settings",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("value", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

# EntityMaps (clause 5.14, hub/entity_maps.py): which entities a query found and where (the
# hub itself, "@none", or registered context sources), kept for a while so that the pages of
# one query read the same set of entities. expires_at in microseconds (migration 0022).
entity_maps = Table(
    "entity_maps",
    metadata,
    Column("tenant", String(255), primary_key=True),
    Column("map_id", String(255), primary_key=True),
    Column("doc", Json, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Index("ix_entity_maps_expires", "expires_at"),
)
