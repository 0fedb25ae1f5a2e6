"""Geo index: bounding boxes of GeoProperty instances (R*Tree on SQLite, GiST box on PostgreSQL).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "entity_geo",
        sa.Column("gid", Id, primary_key=True, autoincrement=True),
        sa.Column("eid", Id, sa.ForeignKey("entities.eid", ondelete="CASCADE"), nullable=False),
        sa.Column("tenant", sa.String(255), nullable=False),
        sa.Column("attr", sa.String(1024), nullable=False),
        sa.Column("minx", sa.Float, nullable=False),
        sa.Column("miny", sa.Float, nullable=False),
        sa.Column("maxx", sa.Float, nullable=False),
        sa.Column("maxy", sa.Float, nullable=False),
    )
    op.create_index("ix_entity_geo_eid", "entity_geo", ["eid"])
    if op.get_bind().dialect.name == "sqlite":
        op.execute("CREATE VIRTUAL TABLE entity_geo_rtree USING rtree(gid, minx, maxx, miny, maxy)")
        op.execute(
            "CREATE TRIGGER entity_geo_ai AFTER INSERT ON entity_geo BEGIN "
            "INSERT INTO entity_geo_rtree VALUES (new.gid, new.minx, new.maxx, new.miny, new.maxy);"
            " END"
        )
        op.execute(
            "CREATE TRIGGER entity_geo_ad AFTER DELETE ON entity_geo BEGIN "
            "DELETE FROM entity_geo_rtree WHERE gid = old.gid; END"
        )
    else:
        op.execute(
            "CREATE INDEX ix_entity_geo_box ON entity_geo USING gist "
            "(box(point(minx, miny), point(maxx, maxy)))"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE IF EXISTS entity_geo_rtree")
    op.drop_table("entity_geo")
