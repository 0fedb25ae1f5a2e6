"""``opendata_search_rows``: one narrow row per dataset that is not deleted, holding only what
a search reads of its matches; the datasets' ``search_facets`` (0027) move into it.

A word search built its matches from ``opendata_datasets``, whose rows also carry three
languages of notes, the data dictionary and extras (~1.5 kB each). PostgreSQL hashed all
10,000 of them, or probed each match's, for every search: ~12 of the ~18 ms its statement took
on a slow machine. The narrow rows hold who may see a dataset (state, private, owner_org), its
sort keys (name, titles, times) and its facet values. Filled here from the datasets;
search/index.py keeps them in the same transaction as the dataset's other index rows.

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None

_COLUMNS = "owner_org, state, private, name, title_en, title_tc, title_sc, created_at, modified_at"


def upgrade() -> None:
    op.create_table(
        "opendata_search_rows",
        sa.Column(
            "dataset_id",
            sa.String(36),
            sa.ForeignKey("opendata_datasets.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("owner_org", sa.String(36), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("private", sa.Boolean, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("title_en", sa.String(500), nullable=False),
        sa.Column("title_tc", sa.String(500), nullable=False),
        sa.Column("title_sc", sa.String(500), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("modified_at", sa.BigInteger, nullable=False),
        sa.Column("facets", sa.Text, nullable=False),
        sqlite_with_rowid=False,
    )
    # A dataset that is not deleted has its facet values kept (0027, 0028); one with none
    # ('' joins nothing) has no facet rows.
    op.execute(
        f"INSERT INTO opendata_search_rows (dataset_id, {_COLUMNS}, facets) "
        f"SELECT id, {_COLUMNS}, coalesce(search_facets, '') FROM opendata_datasets "
        "WHERE state != 'deleted'"
    )
    # SQLite 3.35+ drops the column in place (a batch copy of the table would cascade-delete
    # every row that refers to it).
    op.drop_column("opendata_datasets", "search_facets")


def downgrade() -> None:
    op.add_column("opendata_datasets", sa.Column("search_facets", sa.Text, nullable=True))
    op.execute(
        "UPDATE opendata_datasets SET search_facets = (SELECT facets FROM opendata_search_rows "
        "WHERE dataset_id = opendata_datasets.id)"
    )
    op.drop_table("opendata_search_rows")
