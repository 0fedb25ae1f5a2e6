"""Open data portal: the historical archive's versions (smartcity.opendata.archive).

Revision ID: 0017
Revises: 0014
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0017"
down_revision = "0014"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "opendata_archive_versions",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("dataset_id", sa.String(36), nullable=False),
        sa.Column("resource_id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("name", Json, nullable=False),
        sa.Column("format", sa.String(100), nullable=False),
        sa.Column("mimetype", sa.String(255), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("captured_at", sa.BigInteger, nullable=False),
    )
    op.create_index(
        "ix_opendata_archive_resource",
        "opendata_archive_versions",
        ["resource_id", "kind", "captured_at"],
    )
    op.create_index("ix_opendata_archive_url", "opendata_archive_versions", ["url", "captured_at"])
    op.create_index("ix_opendata_archive_sha", "opendata_archive_versions", ["sha256"])


def downgrade() -> None:
    op.drop_table("opendata_archive_versions")
