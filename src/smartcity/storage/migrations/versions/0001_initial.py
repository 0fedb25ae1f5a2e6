"""Initial schema: entities, history, subscriptions, outbox, API keys, @contexts.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "entities",
        sa.Column("eid", Id, primary_key=True, autoincrement=True),
        sa.Column("tenant", sa.String(255), nullable=False),
        sa.Column("entity_id", sa.String(1024), nullable=False),
        sa.Column("doc", Json, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("modified_at", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("tenant", "entity_id", name="uq_entities_tenant_id"),
    )
    op.create_table(
        "entity_types",
        sa.Column("eid", Id, sa.ForeignKey("entities.eid", ondelete="CASCADE"), primary_key=True),
        sa.Column("etype", sa.String(1024), primary_key=True),
        sa.Column("tenant", sa.String(255), nullable=False),
    )
    op.create_index("ix_entity_types_tenant_type", "entity_types", ["tenant", "etype", "eid"])
    op.create_table(
        "entity_attrs",
        sa.Column("eid", Id, sa.ForeignKey("entities.eid", ondelete="CASCADE"), primary_key=True),
        sa.Column("attr", sa.String(1024), primary_key=True),
        sa.Column("tenant", sa.String(255), nullable=False),
    )
    op.create_index("ix_entity_attrs_tenant_attr", "entity_attrs", ["tenant", "attr", "eid"])
    op.create_table(
        "history_entities",
        sa.Column("hid", Id, primary_key=True, autoincrement=True),
        sa.Column("tenant", sa.String(255), nullable=False),
        sa.Column("entity_id", sa.String(1024), nullable=False),
        sa.Column("types", Json, nullable=False),
        sa.Column("scope", Json, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("modified_at", sa.BigInteger, nullable=False),
        sa.Column("deleted_at", sa.BigInteger, nullable=True),
        sa.UniqueConstraint("tenant", "entity_id", name="uq_history_entities_tenant_id"),
    )
    op.create_table(
        "attr_history",
        sa.Column("iid", Id, primary_key=True, autoincrement=True),
        sa.Column(
            "hid",
            Id,
            sa.ForeignKey("history_entities.hid", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("attr", sa.String(1024), nullable=False),
        sa.Column("dataset_id", sa.String(1024), nullable=False),
        sa.Column("instance_id", sa.String(100), nullable=False),
        sa.Column("observed_at", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("modified_at", sa.BigInteger, nullable=False),
        sa.Column("num", sa.Float, nullable=True),
        sa.Column("value", Json, nullable=False),
    )
    op.create_index("ix_attr_history_series", "attr_history", ["hid", "attr", "observed_at"])
    op.create_index("ix_attr_history_instance", "attr_history", ["instance_id"])
    op.create_table(
        "subscriptions",
        sa.Column("tenant", sa.String(255), primary_key=True),
        sa.Column("sub_id", sa.String(1024), primary_key=True),
        sa.Column("doc", Json, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("modified_at", sa.BigInteger, nullable=False),
        sa.Column("times_sent", sa.Integer, nullable=False, server_default="0"),
        sa.Column("times_failed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_notification", sa.BigInteger, nullable=True),
        sa.Column("last_success", sa.BigInteger, nullable=True),
        sa.Column("last_failure", sa.BigInteger, nullable=True),
    )
    op.create_table(
        "outbox",
        sa.Column("oid", Id, primary_key=True, autoincrement=True),
        sa.Column("tenant", sa.String(255), nullable=False),
        sa.Column("sub_id", sa.String(1024), nullable=False),
        sa.Column("payload", Json, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("next_attempt_at", sa.BigInteger, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text, nullable=True),
    )
    op.create_index("ix_outbox_due", "outbox", ["next_attempt_at"])
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("digest", sa.String(128), nullable=False, unique=True),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("tenants", Json, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("revoked_at", sa.BigInteger, nullable=True),
    )
    op.create_table(
        "jsonld_contexts",
        sa.Column("url", sa.String(2048), primary_key=True),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "jsonld_contexts",
        "api_keys",
        "outbox",
        "subscriptions",
        "attr_history",
        "history_entities",
        "entity_attrs",
        "entity_types",
        "entities",
    ):
        op.drop_table(table)
