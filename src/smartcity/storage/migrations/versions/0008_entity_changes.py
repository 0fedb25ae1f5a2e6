"""Index entities by (tenant, modified_at): "what changed since T" for readers in other
processes (the dashboard sees writes of other server workers and of `smartcity ingest mqtt`).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_entities_tenant_modified", "entities", ["tenant", "modified_at", "eid"])


def downgrade() -> None:
    op.drop_index("ix_entities_tenant_modified", table_name="entities")
