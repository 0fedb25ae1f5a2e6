"""EntityMaps (NGSI-LD clause 5.14): the entities a query found and where, kept for a while
so that the pages of one query read the same set of entities (smartcity.hub.entity_maps).

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "entity_maps",
        sa.Column("tenant", sa.String(255), primary_key=True),
        sa.Column("map_id", sa.String(255), primary_key=True),
        sa.Column("doc", Json, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_entity_maps_expires", "entity_maps", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_entity_maps_expires", table_name="entity_maps")
    op.drop_table("entity_maps")
