"""Open data DataStore: the registry of resources' tables and their loads
(smartcity.opendata.datastore). The tables holding the rows are made per resource.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-11
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")
ID = 36


def _resource() -> sa.Column:
    return sa.Column(
        "resource_id",
        sa.String(ID),
        sa.ForeignKey("opendata_resources.id", ondelete="CASCADE"),
        primary_key=True,
    )


def upgrade() -> None:
    op.create_table(
        "opendata_datastore",
        _resource(),
        sa.Column("table_name", sa.String(63), nullable=False, unique=True),
        sa.Column("fields", Json, nullable=False),
        sa.Column("primary_key", Json, nullable=False),
        sa.Column("indexes", Json, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("modified_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "opendata_datastore_loads",
        _resource(),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("message", sa.Text, nullable=True),
        sa.Column("encoding", sa.String(32), nullable=True),
        sa.Column("rows_loaded", sa.BigInteger, nullable=False),
        sa.Column("bad_rows", Json, nullable=False),
        sa.Column("bad_row_count", sa.BigInteger, nullable=False),
        sa.Column("started_at", sa.BigInteger, nullable=False),
        sa.Column("finished_at", sa.BigInteger, nullable=True),
    )


def downgrade() -> None:
    bind = op.get_bind()
    names = [r[0] for r in bind.execute(sa.text("SELECT table_name FROM opendata_datastore"))]
    for name in names:
        op.drop_table(name)
    op.drop_table("opendata_datastore_loads")
    op.drop_table("opendata_datastore")
