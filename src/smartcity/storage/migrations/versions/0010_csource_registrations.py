"""Federation: context source registrations, their subscriptions and those subscriptions'
notification outbox (NGSI-LD clauses 5.9-5.11).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01

"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "csource_registrations",
        sa.Column("tenant", sa.String(255), primary_key=True),
        sa.Column("reg_id", sa.String(1024), primary_key=True),
        sa.Column("doc", Json, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("modified_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=True),
    )
    op.create_table(
        "csource_subscriptions",
        sa.Column("tenant", sa.String(255), primary_key=True),
        sa.Column("sub_id", sa.String(1024), primary_key=True),
        sa.Column("doc", Json, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("modified_at", sa.BigInteger, nullable=False),
        sa.Column("times_sent", sa.Integer, nullable=False, server_default="0"),
        sa.Column("times_failed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_success", sa.BigInteger, nullable=True),
        sa.Column("last_failure", sa.BigInteger, nullable=True),
    )
    op.create_table(
        "csource_outbox",
        sa.Column("oid", Id, primary_key=True, autoincrement=True),
        sa.Column("tenant", sa.String(255), nullable=False),
        sa.Column("sub_id", sa.String(1024), nullable=False),
        sa.Column("payload", Json, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("next_attempt_at", sa.BigInteger, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text, nullable=True),
    )
    op.create_index("ix_csource_outbox_due", "csource_outbox", ["next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_csource_outbox_due", table_name="csource_outbox")
    op.drop_table("csource_outbox")
    op.drop_table("csource_subscriptions")
    op.drop_table("csource_registrations")
