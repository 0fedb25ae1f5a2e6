"""Hosted @contexts belong to a tenant: jsonld_contexts.tenant.

A context hosted with POST /jsonldContexts is listed, served and deleted only in the tenant
that hosted it. Cached and preloaded contexts (copies of documents published elsewhere) are
shared by every tenant and keep the tenant ''; rows from before this revision do too.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04

"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jsonld_contexts") as batch:
        batch.add_column(sa.Column("tenant", sa.String(255), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("jsonld_contexts") as batch:
        batch.drop_column("tenant")
