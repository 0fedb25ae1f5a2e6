"""``csource_subscriptions.last_queued_at``: when a registration subscription last had a
notification queued, so that its ``throttling`` holds across processes and nodes as an entity
subscription's does (``subscriptions.last_queued_at``, 0021): a compare-and-set in the
registration write's own transaction.

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0032"
down_revision = "0031"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "csource_subscriptions", sa.Column("last_queued_at", sa.BigInteger, nullable=True)
    )


def downgrade() -> None:
    op.drop_column("csource_subscriptions", "last_queued_at")
