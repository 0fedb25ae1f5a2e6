"""Tables of the live-data module: the device registry and the ledger of accepted readings.

``live_readings`` is what makes ingestion idempotent: one row per (device, reading time),
inserted in the transaction that writes the reading into the hub. A redelivered reading
conflicts with its row and is counted as a duplicate instead of adding a second history
instance. Rows are two integers, so the ledger stays small next to ``attr_history``.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer, String, Table

from smartcity.storage.schema import Id, Json, metadata

live_devices = Table(
    "live_devices",
    metadata,
    Column("did", Id, primary_key=True, autoincrement=True),
    Column("device_id", String(128), nullable=False, unique=True),
    Column("tenant", String(255), nullable=False),
    Column("name", String(255), nullable=False),
    Column("entity_id", String(1024), nullable=False),
    Column("entity_type", String(1024), nullable=False),  # short name, as registered
    Column("context", String(2048), nullable=True),  # @context URL for the names, if any
    # payload key -> {"name", "iri", "unitCode"?, "scale"?, "offset"?}
    Column("attributes", Json, nullable=False),
    Column("secret_digest", String(64), nullable=False),
    Column("mqtt_topic", String(1024), nullable=False, unique=True),
    Column("mqtt_auth", String(16), nullable=False),  # "secret" | "broker"
    Column("interval_s", Integer, nullable=False),
    Column("status", String(16), nullable=False),  # new | ok | silent | revoked
    Column("created_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger, nullable=True),
    Column("last_seen", BigInteger, nullable=True),  # when the hub last accepted a reading
    # Changed by create/revoke: ingesting processes refresh their device cache from it.
    Column("updated_at", BigInteger, nullable=False),
    Index("ix_live_devices_tenant", "tenant", "device_id"),
    Index("ix_live_devices_updated", "updated_at"),
)

live_readings = Table(
    "live_readings",
    metadata,
    Column("did", Id, ForeignKey("live_devices.did", ondelete="CASCADE"), primary_key=True),
    Column("t", BigInteger, primary_key=True),  # reading time, microseconds (ms precision)
    sqlite_with_rowid=False,
)
