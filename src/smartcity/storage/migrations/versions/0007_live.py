"""Live data: the device registry and the ledger of accepted readings (idempotent ingestion).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "live_devices",
        sa.Column("did", Id, primary_key=True, autoincrement=True),
        sa.Column("device_id", sa.String(128), nullable=False, unique=True),
        sa.Column("tenant", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("entity_id", sa.String(1024), nullable=False),
        sa.Column("entity_type", sa.String(1024), nullable=False),
        sa.Column("context", sa.String(2048), nullable=True),
        sa.Column("attributes", Json, nullable=False),
        sa.Column("secret_digest", sa.String(64), nullable=False),
        sa.Column("mqtt_topic", sa.String(1024), nullable=False, unique=True),
        sa.Column("mqtt_auth", sa.String(16), nullable=False),
        sa.Column("interval_s", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("revoked_at", sa.BigInteger, nullable=True),
        sa.Column("last_seen", sa.BigInteger, nullable=True),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_live_devices_tenant", "live_devices", ["tenant", "device_id"])
    op.create_index("ix_live_devices_updated", "live_devices", ["updated_at"])
    op.create_table(
        "live_readings",
        sa.Column(
            "did",
            Id,
            sa.ForeignKey("live_devices.did", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("t", sa.BigInteger, primary_key=True),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("live_readings")
    op.drop_index("ix_live_devices_updated", table_name="live_devices")
    op.drop_index("ix_live_devices_tenant", table_name="live_devices")
    op.drop_table("live_devices")
