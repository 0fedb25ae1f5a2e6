"""Each dataset's facet values in one column: ``opendata_datasets.search_facets``.

A search counted its matches' facets by seeking each match's rows in
``opendata_search_facets`` (1,374 matches of 10,000 datasets: about half of a word search's
time on either backend). The values now also sit in the dataset's own row, which the search
reads anyway for sorting, as ``field<US>value`` entries joined by RS in order
(``search/index.keep_facets``); search/index.py keeps both in the same transaction. Filled
here from the rows already indexed (NULL for a dataset without index rows: a deleted one).

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None

# The separators are taken out of the values, as search/index.facet_value does now.
_FILL = {
    "postgresql": """
        UPDATE opendata_datasets AS d SET search_facets = (
            SELECT string_agg(entry, chr(30) ORDER BY entry) FROM (
                SELECT field || chr(31) || replace(replace(value, chr(30), ' '), chr(31), ' ')
                    AS entry
                FROM opendata_search_facets WHERE dataset_id = d.id
            ) AS entries
        )
    """,
    "sqlite": """
        UPDATE opendata_datasets SET search_facets = (
            SELECT group_concat(entry, char(30)) FROM (
                SELECT field || char(31) || replace(replace(value, char(30), ' '), char(31), ' ')
                    AS entry
                FROM opendata_search_facets WHERE dataset_id = opendata_datasets.id
                ORDER BY entry
            )
        )
    """,
}


def upgrade() -> None:
    op.add_column("opendata_datasets", sa.Column("search_facets", sa.Text, nullable=True))
    op.execute(_FILL[op.get_bind().dialect.name])


def downgrade() -> None:
    op.drop_column("opendata_datasets", "search_facets")
