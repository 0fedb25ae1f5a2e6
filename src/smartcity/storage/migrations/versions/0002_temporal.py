"""Temporal API: an hourly rollup of attr_history for fast aggregations.

One row per (entity, attribute, hour of observedAt, datasetId) with the count, sum, sum of
squares, min, max and first/last time of the instances in that hour. Existing history is
rolled up here, in SQL, so an upgraded hub answers aggregations correctly at once.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
HOUR = 3_600_000_000
# Floor to the hour for negative (pre-1970) times too: SQL's % keeps the dividend's sign.
HOUR_OF = f"observed_at - (((observed_at % {HOUR}) + {HOUR}) % {HOUR})"


def upgrade() -> None:
    op.create_table(
        "attr_history_hourly",
        sa.Column(
            "hid",
            Id,
            sa.ForeignKey("history_entities.hid", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("attr", sa.String(1024), primary_key=True),
        sa.Column("hour", sa.BigInteger, primary_key=True),
        sa.Column("dataset_id", sa.String(1024), primary_key=True),
        sa.Column("n", sa.BigInteger, nullable=False),
        sa.Column("n_num", sa.BigInteger, nullable=False),
        sa.Column("total", sa.Float, nullable=False),
        sa.Column("sumsq", sa.Float, nullable=False),
        sa.Column("vmin", sa.Float, nullable=True),
        sa.Column("vmax", sa.Float, nullable=True),
        sa.Column("first_at", sa.BigInteger, nullable=False),
        sa.Column("last_at", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sqlite_with_rowid=False,
    )
    postgres = op.get_bind().dialect.name == "postgresql"
    kind = "value->>'type'" if postgres else "json_extract(value, '$.type')"
    op.execute(
        "INSERT INTO attr_history_hourly "
        "(hid, attr, hour, dataset_id, n, n_num, total, sumsq, vmin, vmax, first_at, last_at, "
        "kind) "
        f"SELECT hid, attr, {HOUR_OF}, dataset_id, COUNT(*), COUNT(num), "
        "COALESCE(SUM(num), 0), COALESCE(SUM(num * num), 0), MIN(num), MAX(num), "
        f"MIN(observed_at), MAX(observed_at), MAX({kind}) "
        f"FROM attr_history GROUP BY hid, attr, {HOUR_OF}, dataset_id"
    )


def downgrade() -> None:
    op.drop_table("attr_history_hourly")
