"""Index entities by (tenant, eid): pages of a tenant's entities in insertion order without a
sort, and deep offsets walk the index instead of sorting the whole tenant.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_entities_tenant_eid", "entities", ["tenant", "eid"])


def downgrade() -> None:
    op.drop_index("ix_entities_tenant_eid", table_name="entities")
