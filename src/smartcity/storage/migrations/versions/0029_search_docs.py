"""``opendata_search_docs``: each dataset's ``package_show`` dict per language, kept as JSON
by the search index (``search/index.py``), less what is not the dataset's own (its
organisation's and groups' summaries, the licence's title, links to this site, DataStore
state: ``catalogue/dictize.finish_kept`` adds them when read).

A search's page of 20 datasets was built from five statements and ~200 µs of Python per
dataset (10 of a word search's ~50 ms on SQLite, 17 on PostgreSQL, on a slow machine). The
table starts empty: until a dataset is next written (or ``smartcity opendata reindex`` runs)
it is built from its rows as before, with the same result.

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "opendata_search_docs",
        sa.Column(
            "dataset_id",
            sa.String(36),
            sa.ForeignKey("opendata_datasets.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("lang", sa.String(8), primary_key=True),
        sa.Column("doc", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("opendata_search_docs")
