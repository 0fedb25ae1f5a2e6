"""A matched dataset's facet values from the index alone: ``opendata_search_facets
(dataset_id, field, value)`` in place of ``(dataset_id)``.

``package_search`` counts the facets of its matches (built once per request since this
revision's change to search/engine.py). For a few thousand matches PostgreSQL seeks each
match's facet rows; with an index on ``dataset_id`` alone every row found was a read of the
table as well, so it chose to scan all 80,000 facet rows of 10,000 datasets and hash-join
them to the matches instead (a facet filter's search: 15-33 ms to 10-15 ms in process). The
new index starts with ``dataset_id``, so it still serves deleting a dataset's rows, and the
narrower one goes.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_opendata_search_facets_by_dataset",
        "opendata_search_facets",
        ["dataset_id", "field", "value"],
    )
    op.drop_index("ix_opendata_search_facets_dataset", table_name="opendata_search_facets")


def downgrade() -> None:
    op.create_index("ix_opendata_search_facets_dataset", "opendata_search_facets", ["dataset_id"])
    op.drop_index("ix_opendata_search_facets_by_dataset", table_name="opendata_search_facets")
