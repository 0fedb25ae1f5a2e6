"""Temporal API: deletions kept in the temporal evolution (timeproperty=deletedAt).

When an attribute (or a whole entity) is deleted, ``attr_history`` gets one more instance
per deleted attribute instance, valued ``urn:ngsi-ld:null``, whose ``deleted_at`` holds the
time of the deletion. Every other row has ``deleted_at`` NULL; such deletion records are
not rolled up (they carry no value to aggregate).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("attr_history", sa.Column("deleted_at", sa.BigInteger, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("attr_history") as batch:
        batch.drop_column("deleted_at")
