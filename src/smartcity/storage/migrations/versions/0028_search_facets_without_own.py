"""A dataset's kept facet values (``opendata_datasets.search_facets``, 0027) leave out its
name and id.

Each is one dataset's own, so a search's matches had two distinct entries each to count
(2,748 of 2,794 distinct entries for 1,374 matches), most of the counting's time; search
now counts those two facets from the matches' own columns, when asked for
(``search/index.OWN``). Refilled here from the index rows, as 0027 filled it.

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None

# 0027's fill, with the fields to leave out.
_FILL = {
    "postgresql": """
        UPDATE opendata_datasets AS d SET search_facets = (
            SELECT coalesce(string_agg(entry, chr(30) ORDER BY entry), '') FROM (
                SELECT field || chr(31) || replace(replace(value, chr(30), ' '), chr(31), ' ')
                    AS entry
                FROM opendata_search_facets WHERE dataset_id = d.id {where}
            ) AS entries
        ) WHERE d.search_facets IS NOT NULL
    """,
    "sqlite": """
        UPDATE opendata_datasets SET search_facets = (
            SELECT coalesce(group_concat(entry, char(30)), '') FROM (
                SELECT field || char(31) || replace(replace(value, char(30), ' '), char(31), ' ')
                    AS entry
                FROM opendata_search_facets
                WHERE dataset_id = opendata_datasets.id {where}
                ORDER BY entry
            )
        ) WHERE search_facets IS NOT NULL
    """,
}


def _fill(where: str) -> None:
    op.execute(_FILL[op.get_bind().dialect.name].format(where=where))


def upgrade() -> None:
    _fill("AND field NOT IN ('name', 'id')")


def downgrade() -> None:
    _fill("")
