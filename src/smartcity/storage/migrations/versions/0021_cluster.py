"""Several nodes on one database: leases of periodic jobs (storage/leases.py), the values
every node shares, such as the server secret (portal/feedback/secret.py), and
``subscriptions.last_queued_at`` (a subscription's throttling holds across nodes) and an
index of deleted entities (other nodes' live views learn of deletions).

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_history_entities_deleted",
        "history_entities",
        ["tenant", "deleted_at"],
        postgresql_where=sa.text("deleted_at IS NOT NULL"),
        sqlite_where=sa.text("deleted_at IS NOT NULL"),
    )
    op.add_column("subscriptions", sa.Column("last_queued_at", sa.BigInteger, nullable=True))
    op.create_table(
        "cluster_leases",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("holder", sa.String(200), nullable=True),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.Column("last_run_at", sa.BigInteger, nullable=True),
        sa.Column("last_holder", sa.String(200), nullable=True),
        sa.Column("runs", sa.BigInteger, nullable=False, server_default="0"),
    )
    op.create_table(
        "cluster_settings",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("cluster_settings")
    op.drop_table("cluster_leases")
    op.drop_column("subscriptions", "last_queued_at")
    op.drop_index("ix_history_entities_deleted", table_name="history_entities")
